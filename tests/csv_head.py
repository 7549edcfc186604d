"""The first rows of a benchmark CSV as a CSV of their own (the tests' small datasets)."""

from __future__ import annotations

import csv
from pathlib import Path


def head_csv(src: Path, n: int, out: Path) -> Path:
    """Write the first ``n`` data rows of ``src`` (header kept) to ``out``; returns ``out``."""
    csv.field_size_limit(10**9)
    with open(src, newline="") as f:
        rows = [row for _, row in zip(range(n), csv.DictReader(f))]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out
