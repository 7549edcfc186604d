"""Paired comparison of two eval_lm_csp.py runs on the same targets: exact McNemar test on k=1 matches.

    python benchmarks/paired_csp.py runs/eval/supervised.json runs/eval/rft.json

Both files must come from ``eval_lm_csp.py --k 1`` (constrained) on the same compositions, in the same
order (the same ``--dataset``, ``--split``, ``--start`` and ``--num-compositions``). Prints each run's
validity and match rate, the targets matched by one run only (b: the first, c: the second), and the
two-sided exact McNemar p-value (a binomial test of min(b, c) among b + c at one half). Validity is
paired the same way.
"""

from __future__ import annotations

import argparse
import json
from math import comb
from pathlib import Path


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def per_target(path: str | Path) -> list[dict]:
    report = json.loads(Path(path).read_text())
    try:
        return report["info"]["constrained"]["per_target_k1"]
    except KeyError:
        raise SystemExit(
            f"{path}: no per-target k=1 results (a constrained eval_lm_csp.py run, not --merge)"
        ) from None


def compare(first: list[dict], second: list[dict]) -> dict:
    """Counts and p-values for matches and validity, target by target."""
    if [t["id"] for t in first] != [t["id"] for t in second]:
        raise SystemExit("the two runs are not on the same targets in the same order")
    out = {"targets": len(first)}
    for key in ("matched_k1", "valid"):
        b = sum(x[key] and not y[key] for x, y in zip(first, second))
        c = sum(y[key] and not x[key] for x, y in zip(first, second))
        out[key] = {
            "first": sum(x[key] for x in first) / len(first),
            "second": sum(y[key] for y in second) / len(second),
            "first_only": b,
            "second_only": c,
            "p": mcnemar_exact(b, c),
        }
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="an eval_lm_csp.py JSON (the baseline)")
    p.add_argument("second", help="an eval_lm_csp.py JSON on the same targets")
    args = p.parse_args(argv)
    result = compare(per_target(args.first), per_target(args.second))
    for key, name in (("matched_k1", "match"), ("valid", "validity")):
        r = result[key]
        print(
            f"{name}: {100 * r['first']:.2f} % -> {100 * r['second']:.2f} % on {result['targets']} targets; "
            f"first only {r['first_only']}, second only {r['second_only']}, exact McNemar p = {r['p']:.3g}"
        )
    return result


if __name__ == "__main__":
    main()
