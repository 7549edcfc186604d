"""Summary of the CIF codec's validity reports (``hfmat.cif.check_validity``), per check."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any


def _checks(report: Any) -> list[tuple[str, bool | None, str | None]]:
    checks = getattr(report, "checks", None)
    if checks is None and isinstance(report, dict):
        checks = report.get("checks")
    out = []
    for c in checks or []:
        get = c.get if isinstance(c, dict) else (lambda k, c=c: getattr(c, k, None))
        out.append((str(get("name")), get("passed"), get("reason")))
    return out


def _valid(report: Any) -> bool:
    v = report.get("valid") if isinstance(report, dict) else getattr(report, "valid", None)
    return bool(v)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def validity_summary(reports: Sequence[Any], max_reasons: int = 5) -> dict[str, Any]:
    """Fraction of valid texts and, per check (in the order the reports list them), how many texts
    it was run on, how many passed and the commonest failure reasons (reasons that differ only in
    their numbers are counted together; one example of each is kept).

    An entry that is not a report (None, or an error string from a text that could not be checked)
    counts as invalid and is tallied under ``not_checked``.
    """
    n = len(reports)
    names: list[str] = []
    run: Counter = Counter()
    passed: Counter = Counter()
    reasons: dict[str, Counter] = {}
    examples: dict[tuple[str, str], str] = {}
    not_checked: Counter = Counter()
    modes: set[str] = set()
    n_valid = 0
    for report in reports:
        if report is None or isinstance(report, (str, BaseException)):
            not_checked[str(report) if report is not None else "no report"] += 1
            continue
        n_valid += _valid(report)
        mode = report.get("mode") if isinstance(report, dict) else getattr(report, "mode", None)
        if mode:
            modes.add(str(mode))
        for name, ok, reason in _checks(report):
            if name not in reasons:
                names.append(name)
                reasons[name] = Counter()
            if ok is None:  # skipped: an earlier check failed
                continue
            run[name] += 1
            if ok:
                passed[name] += 1
            else:
                text = str(reason) if reason else "failed"
                key = _NUMBER.sub("#", text)
                reasons[name][key] += 1
                examples.setdefault((name, key), text)
    return {
        "mode": ", ".join(sorted(modes)) or None,  # the space-group check's mode (hfmat.cif.validity.MODES)
        "n": n,
        "n_valid": n_valid,
        "validity": n_valid / n if n else None,
        "not_checked": sum(not_checked.values()),
        "not_checked_reasons": dict(not_checked.most_common(max_reasons)),
        "checks": [
            {
                "name": name,
                "n_run": run[name],
                "n_passed": passed[name],
                "pass_rate": passed[name] / run[name] if run[name] else None,
                "top_failures": [
                    {"reason": r, "count": c, "example": examples[(name, r)]}
                    for r, c in reasons[name].most_common(max_reasons)
                ],
            }
            for name in names
        ],
    }
