"""Throughput of the CIF codec: CIFs/s for canonicalization, parsing and validity checks on the
perov_5 and carbon_24 test files, serial (1 process) and parallel (a process pool).

    python benchmarks/bench_cif.py [--limit 200] [--workers 2] [--data ../shared/data]

canonicalize: a CSV's P1 CIF text -> canonical text (pymatgen read + symmetrize + write + the
round-trip check); parse: canonical text -> Structure; validity: canonical text -> ValidityReport.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roundtrip_cif import DEFAULT_DATA, read_cifs  # noqa: E402

FILES = ("perov_5/test.csv", "carbon_24/test.csv")


def _timed(fn, items, workers):
    start = time.perf_counter()
    results = fn(items, num_workers=workers, progress=False)
    seconds = time.perf_counter() - start
    failed = sum(not r.ok for r in results)
    return results, len(items) / seconds, failed


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")
    from hfmat.cif import canonicalize_many, check_validity_many, parse_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="rows per file (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel runs")
    args = parser.parse_args(argv)

    header = f"{'file':20s} {'rows':>5s} {'step':13s} {'serial/s':>9s} {f'{args.workers} procs/s':>10s} {'failed':>6s}"
    print(header)
    print("-" * len(header))
    for name in FILES:
        rows = read_cifs(args.data / name, args.limit)
        sources = [cif for _, cif in rows]
        texts, serial, failed = _timed(canonicalize_many, sources, 1)
        _, parallel, _ = _timed(canonicalize_many, sources, args.workers)
        print(f"{name:20s} {len(rows):5d} {'canonicalize':13s} {serial:9.1f} {parallel:10.1f} {failed:6d}")
        canonical = [r.value for r in texts if r.ok]
        for step, fn in (("parse", parse_many), ("validity", check_validity_many)):
            results, serial, failed = _timed(fn, canonical, 1)
            _, parallel, _ = _timed(fn, canonical, args.workers)
            if step == "validity":
                valid = sum(r.ok and r.value.valid for r in results)
                step_note = f"  ({valid}/{len(canonical)} valid)"
            else:
                step_note = ""
            print(
                f"{'':20s} {len(canonical):5d} {step:13s} {serial:9.1f} {parallel:10.1f} {failed:6d}{step_note}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
