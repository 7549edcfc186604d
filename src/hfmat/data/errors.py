"""Errors, warnings and skip statistics of hfmat.data."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field


class DataError(ValueError):
    """Input data is malformed (a CSV without a ``cif`` column, an unknown source, ...)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A file, folder or cached dataset repository that was asked for does not exist."""


class DataWarning(UserWarning):
    """Rows were skipped; the message lists them by id."""


@dataclass
class SplitStats:
    """What happened to one split in one step: rows in, rows kept, and each skipped row's reason."""

    rows_in: int = 0
    rows_kept: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # material_id -> reason

    @property
    def num_skipped(self) -> int:
        return self.rows_in - self.rows_kept


#: Statistics of one step over a DatasetDict: split name -> SplitStats.
DataStats = dict[str, SplitStats]


def warn_skipped(step: str, split: str, stats: SplitStats, show: int = 20) -> None:
    """Emit a :class:`DataWarning` listing the skipped rows of ``split`` (no-op when none)."""
    if not stats.num_skipped:
        return
    items = list(stats.skipped.items())
    listed = "; ".join(f"{mid}: {reason}" for mid, reason in items[:show])
    more = f"; ... and {len(items) - show} more" if len(items) > show else ""
    warnings.warn(
        f"{step} [{split}]: skipped {stats.num_skipped} of {stats.rows_in} row(s): {listed}{more}",
        DataWarning,
        stacklevel=3,
    )
