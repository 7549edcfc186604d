"""Round trip of the canonical CIF codec on every structure of the shared benchmark data.

For each CSV: ``cif_to_structure(structure_to_cif(s))`` must match ``s`` under
StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3); prints the match rate and the worst RMS.

    python benchmarks/roundtrip_cif.py [--data ../shared/data] [--limit N] [--workers 2] [--files a.csv ...]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = (
    "perov_5/val.csv",
    "perov_5/test.csv",
    "carbon_24/val.csv",
    "carbon_24/test.csv",
    "mp_20_subset/train.csv",
    "mp_20_subset/val.csv",
)


def read_cifs(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as fh:
        rows = [(row["material_id"], row["cif"]) for row in csv.DictReader(fh)]
    return rows[:limit] if limit else rows


def round_trip(cif: str) -> tuple[bool, float | None, int]:
    """(matched, rms, length of the canonical text) for one source CIF."""
    warnings.simplefilter("ignore")
    from pymatgen.core import Structure

    from hfmat.cif import cif_to_structure, structure_to_cif
    from hfmat.cif.writer import round_trip_matcher

    original = Structure.from_str(cif, fmt="cif")
    text = structure_to_cif(original)
    restored = cif_to_structure(text)
    rms = round_trip_matcher().get_rms_dist(original, restored)
    return rms is not None, None if rms is None else float(rms[0]), len(text)


def main(argv: list[str] | None = None) -> int:
    from hfmat.cif.batch import map_items

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="rows per file (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", nargs="+", default=FILES, help="CSV paths under --data")
    args = parser.parse_args(argv)

    print(
        f"{'file':26s} {'rows':>6s} {'matched':>8s} {'rate %':>8s} {'worst RMS':>10s} {'errors':>6s} {'s':>7s}"
    )
    failed_any = False
    for name in args.files:
        path = args.data / name
        if not path.exists():
            print(f"{name:26s} missing")
            continue
        rows = read_cifs(path, args.limit)
        start = time.perf_counter()
        results = map_items(round_trip, [cif for _, cif in rows], args.workers, 16, name, progress=False)
        seconds = time.perf_counter() - start
        matched = [r.value for r in results if r.ok and r.value[0]]
        errors = [(rows[r.index][0], r.error) for r in results if not r.ok]
        unmatched = [rows[r.index][0] for r in results if r.ok and not r.value[0]]
        worst = max((m[1] for m in matched), default=float("nan"))
        rate = 100.0 * len(matched) / len(rows)
        print(
            f"{name:26s} {len(rows):6d} {len(matched):8d} {rate:8.2f} {worst:10.4f} {len(errors):6d} {seconds:7.1f}"
        )
        for material_id, error in errors[:5]:
            print(f"    error {material_id}: {error}")
        for material_id in unmatched[:5]:
            print(f"    no match {material_id}")
        failed_any |= bool(errors or unmatched)
    return 1 if failed_any else 0


if __name__ == "__main__":
    sys.exit(main())
