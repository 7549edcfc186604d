"""``Dataset.map`` with per-row errors: bad rows are flagged, then split off, counted and reported.

Every hfmat featurization runs as a batched map whose function returns, besides its new columns,
an ``_error`` column (empty string when the row is fine). :func:`map_skipping_bad_rows` runs it
with an explicit, deterministic fingerprint (the input's fingerprint, the step's parameters and the
source code of the hfmat modules that compute it), so datasets' cache answers a second run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from typing import Any

from datasets import Dataset, Features, Value
from datasets.fingerprint import Hasher

from hfmat.data.errors import SplitStats

ERROR_COLUMN = "_error"


@cache
def code_version(*packages: str) -> str:
    """A hash of the Python sources of ``packages`` (e.g. ``"hfmat.cif"``): part of every fingerprint."""
    hasher = Hasher()
    for package in packages:
        for entry in sorted(resources.files(package).iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".py"):
                hasher.update(entry.name)
                hasher.update(entry.read_bytes())
    return hasher.hexdigest()


def step_fingerprint(dataset: Dataset, step: str, params: dict[str, Any], packages: Iterable[str]) -> str:
    """Deterministic fingerprint of ``step`` applied to ``dataset`` with ``params``."""
    return Hasher.hash([dataset._fingerprint, step, sorted(params.items()), code_version(*packages)])


def map_skipping_bad_rows(
    dataset: Dataset,
    function: Callable[..., dict[str, list]],
    *,
    step: str,
    params: dict[str, Any],
    packages: Iterable[str] = ("hfmat.data",),
    fn_kwargs: dict[str, Any] | None = None,
    num_proc: int | None = None,
    batch_size: int = 64,
    remove_columns: list[str] | None = None,
    id_column: str = "material_id",
    new_features: dict[str, Any] | None = None,
) -> tuple[Dataset, SplitStats]:
    """Run the batched ``function`` (which must return an ``_error`` column) and drop flagged rows.

    ``new_features`` gives the types of the columns ``function`` adds or replaces (so that a batch
    of bad rows cannot change the inferred schema). Returns the kept rows (without ``_error``) and
    the statistics of the step.
    """
    fingerprint = step_fingerprint(dataset, step, params, tuple(packages))
    features = None
    if new_features is not None:
        kept = {k: v for k, v in dataset.features.items() if k not in (remove_columns or [])}
        features = Features({**kept, **new_features, ERROR_COLUMN: Value("string")})
    mapped = dataset.map(
        function,
        batched=True,
        batch_size=batch_size,
        fn_kwargs=fn_kwargs or {},
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=remove_columns,
        features=features,
        new_fingerprint=fingerprint,
        desc=step,
    )
    errors = list(mapped[ERROR_COLUMN])
    bad = [i for i, err in enumerate(errors) if err]
    stats = SplitStats(rows_in=len(mapped), rows_kept=len(mapped) - len(bad))
    if bad:
        ids = mapped[id_column] if id_column in mapped.column_names else [None] * len(mapped)
        for i in bad:
            key = str(ids[i]) if ids[i] not in (None, "") else f"row {i}"
            if key in stats.skipped:
                key = f"{key} (row {i})"
            stats.skipped[key] = errors[i]
        mapped = mapped.filter(
            _keep,
            input_columns=ERROR_COLUMN,
            batched=True,
            batch_size=1000,
            new_fingerprint=Hasher.hash([fingerprint, "drop-bad-rows"]),
            desc=f"{step}: drop bad rows",
        )
    return mapped.remove_columns(ERROR_COLUMN), stats


def _keep(errors: list[str]) -> list[bool]:
    return [not err for err in errors]
