"""Paired comparison of two eval_lm_csp.py runs on the same targets: exact McNemar test on k=1 matches.

    python benchmarks/paired_csp.py runs/eval/supervised.json runs/eval/rft.json

Both files must come from ``eval_lm_csp.py --k 1`` (constrained) on the same compositions, in the same
order (the same ``--dataset``, ``--split``, ``--start`` and ``--num-compositions``). Prints each run's
validity and match rate, the targets matched by one run only (b: the first, c: the second), and the
two-sided exact McNemar p-value (a binomial test of min(b, c) among b + c at one half). Validity is
paired the same way, and so is the match by a valid sample (a target matched by a sample that also
passes every validity check: the match a user who keeps only valid CIFs gets).

``--by-target-validity perov_5/test`` (a split under ``--data``, the one both runs were prompted
from) also splits the targets by whether the target's own DFT structure, written as hfmat's
canonical CIF, passes every validity check (``check_validity(mode="strict")``, as
``bench_validity_reference.py`` counts them), and compares the two runs within each group: a model
taught to write valid CIFs can be expected to lose matches exactly where the true structure fails
a check.

    python benchmarks/paired_csp.py runs/eval/supervised.json runs/eval/rl.json --by-target-validity perov_5/test
"""

from __future__ import annotations

import argparse
import json
import sys
from math import comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_validity_reference import check_references  # noqa: E402
from roundtrip_cif import DEFAULT_DATA, read_cifs  # noqa: E402


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


def _value(target: dict, key: str) -> bool:
    """``valid_match``: matched by a sample that also passes every validity check."""
    if key == "valid_match":
        return bool(target["matched_k1"] and target["valid"])
    return bool(target[key])


def compare(first: list[dict], second: list[dict]) -> dict:
    """Counts and p-values for matches and validity, target by target."""
    if [t["id"] for t in first] != [t["id"] for t in second]:
        raise SystemExit("the two runs are not on the same targets in the same order")
    out = {"targets": len(first)}
    for key in ("matched_k1", "valid", "valid_match"):
        xs, ys = [_value(t, key) for t in first], [_value(t, key) for t in second]
        b = sum(x and not y for x, y in zip(xs, ys))
        c = sum(y and not x for x, y in zip(xs, ys))
        out[key] = {
            "first": sum(xs) / len(xs),
            "second": sum(ys) / len(ys),
            "first_only": b,
            "second_only": c,
            "p": mcnemar_exact(b, c),
        }
    return out


def target_validity(path: str | Path, workers: int = 1) -> dict[str, bool]:
    """``{material_id: the target passes every check}`` for one split's CSV (a structure that does
    not canonicalize, or whose check fails to run, counts as not passing)."""
    rows = read_cifs(Path(path))
    checked = check_references([cif for _, cif in rows], workers)
    return {mid: bool(report is not None and report.valid) for (mid, _), (_, report) in zip(rows, checked)}


def by_group(first: list[dict], second: list[dict], groups: dict[str, bool]) -> dict:
    """:func:`compare` within the targets whose own structure passes / fails the checks."""
    missing = [t["id"] for t in first if t["id"] not in groups]
    if missing:
        raise SystemExit(f"{len(missing)} targets (e.g. {missing[0]!r}) are not in the split given")
    out = {}
    for name, want in (("valid_targets", True), ("invalid_targets", False)):
        keep = [i for i, t in enumerate(first) if groups[t["id"]] is want]
        if keep:
            out[name] = compare([first[i] for i in keep], [second[i] for i in keep])
    return out


def _print(result: dict, title: str) -> None:
    for key, name in (
        ("matched_k1", "match"),
        ("valid", "validity"),
        ("valid_match", "match by a valid sample"),
    ):
        r = result[key]
        print(
            f"{title}{name}: {100 * r['first']:.2f} % -> {100 * r['second']:.2f} % on {result['targets']} targets; "
            f"first only {r['first_only']}, second only {r['second_only']}, exact McNemar p = {r['p']:.3g}"
        )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="an eval_lm_csp.py JSON (the baseline)")
    p.add_argument("second", help="an eval_lm_csp.py JSON on the same targets")
    p.add_argument(
        "--by-target-validity", default=None, metavar="DATASET/SPLIT",
        help="also compare within the targets whose own structure passes / fails the validity checks",
    )  # fmt: skip
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the benchmark CSVs")
    p.add_argument("--workers", type=int, default=1, help="processes for the targets' checks")
    args = p.parse_args(argv)
    first, second = per_target(args.first), per_target(args.second)
    result = compare(first, second)
    _print(result, "")
    if args.by_target_validity:
        path = args.data / f"{args.by_target_validity}.csv"
        if not path.is_file():
            p.error(f"--by-target-validity {args.by_target_validity}: no file {path}")
        result["by_target_validity"] = by_group(first, second, target_validity(path, args.workers))
        for name, group in result["by_target_validity"].items():
            _print(group, f"{name.replace('_', ' ')}: ")
    return result


if __name__ == "__main__":
    main()
