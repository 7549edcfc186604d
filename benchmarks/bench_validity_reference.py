"""How often the datasets' own DFT structures pass hfmat's validity checks: the ceiling a
generated-sample validity rate should be read against.

Each structure of each ``dataset/split`` is written as hfmat's canonical CIF (what the LMs are
trained on) and checked with ``check_validity(text, mode="strict")``, the check every LM figure
uses. Printed per split: structures, the percentage valid, how many fail each check, and for the
bond-length check the element pairs most often the worst bond of a failing structure.

    OMP_NUM_THREADS=1 python benchmarks/bench_validity_reference.py \\
        --splits perov_5/test,carbon_24/test,mp_20_subset/val [--limit 1000] [--workers 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roundtrip_cif import DEFAULT_DATA, read_cifs  # noqa: E402

WORST = re.compile(r"worst (\w+)-(\w+) at")


def check_references(cifs: list[str], workers: int) -> list[tuple[bool, object]]:
    """Each CIF written as hfmat's canonical CIF and checked (strict): ``(canonicalized, report)``,
    the report None where the CIF did not canonicalize or its check failed to run
    (``hfmat.cif.batch.check_canonical_many``)."""
    from hfmat.cif.batch import check_canonical_many

    return check_canonical_many(cifs, num_workers=workers)


def reference_validity(cifs: list[str], workers: int) -> dict:
    """Canonicalize and check ``cifs``; the counts of the table's row."""
    checked = check_references(cifs, workers)
    failed, pairs, errors = Counter(), Counter(), 0
    valid = canonical = 0
    for ok, report in checked:
        canonical += ok
        if not ok:
            continue
        if report is None:
            errors += 1
            continue
        valid += report.valid
        for check in report.failed():
            failed[check.name] += 1
            if check.name == "bond_lengths" and (m := WORST.search(check.reason)):
                pairs["-".join(sorted(m.groups()))] += 1
    return {
        "structures": len(cifs),
        "canonical": canonical,
        "not_canonicalized": len(cifs) - canonical,
        "check_errors": errors,
        "valid": valid,
        "valid_percent": 100.0 * valid / len(cifs) if cifs else 0.0,
        "failed_checks": dict(failed.most_common()),
        "worst_bond_pairs": dict(pairs.most_common(8)),
    }


def main(argv: list[str] | None = None) -> int:
    warnings.simplefilter("ignore")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the benchmark CSVs")
    p.add_argument("--splits", default="perov_5/test,carbon_24/test,mp_20_subset/val")
    p.add_argument("--limit", type=int, default=None, help="first N rows of each split (default: all)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)

    rows = {}
    for split in (s.strip() for s in args.splits.split(",") if s.strip()):
        path = args.data / f"{split}.csv"
        if not path.is_file():
            p.error(f"{split}: no file {path}")
        cifs = [cif for _, cif in read_cifs(path, args.limit)]
        rows[split] = reference_validity(cifs, args.workers)

    print(f"\n{'split':20s} {'rows':>6s} {'valid %':>8s}  failing checks (worst bond pairs)")
    for split, r in rows.items():
        checks = ", ".join(f"{k} {v}" for k, v in r["failed_checks"].items()) or "-"
        pairs = ", ".join(f"{k} {v}" for k, v in list(r["worst_bond_pairs"].items())[:4])
        print(
            f"{split:20s} {r['structures']:6d} {r['valid_percent']:8.1f}  {checks}"
            + (f" ({pairs})" if pairs else "")
        )
    if args.out:
        args.out.write_text(json.dumps({"limit": args.limit, "splits": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
