"""Several crystal datasets as one training set: each source's split loaded with
:func:`~hfmat.data.loaders.load_crystal_dataset`, reduced to the normalised columns, labelled and
concatenated with ``datasets.concatenate_datasets``.

```python
from hfmat.data.sources import load_sources
ds = load_sources(
    [{"dataset": "mp_20", "data_dir": "../shared/data/mp_20_subset", "split": "train", "name": "mp_20_subset"},
     {"dataset": "perov_5", "split": "val"}],
    data_dir="../shared/data",
)
ds["source"][:1]   # ['mp_20_subset:train']: the label each row keeps
```

A source is a mapping with ``dataset`` (any source :func:`load_crystal_dataset` takes) and
optionally ``split`` (default ``train``), ``data_dir`` (else the ``data_dir`` passed for all) and
``name`` (the label's first half; default ``dataset``) and ``repeat`` (how many times its training
rows are used per epoch, :func:`repeat_by_source`; default 1). The sources' property columns differ, so
by default only :data:`~hfmat.data.loaders.NORMALISED_COLUMNS` are kept, plus ``source``;
``keep_columns=True`` also keeps every other column any source has (the union, in the order first
met), a list keeps those, and a source that lacks one gets ``None`` there (so
:func:`hfmat.data.descriptions.add_descriptions` leaves that property out of its sentences).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, concatenate_datasets

from hfmat.data.errors import DataError

__all__ = [
    "Source",
    "holdout_by_source",
    "load_sources",
    "parse_sources",
    "repeat_by_source",
    "source_counts",
]

SOURCE_COLUMN = "source"
_KEYS = {"dataset", "split", "data_dir", "name", "repeat"}


@dataclass(frozen=True)
class Source:
    dataset: str
    split: str = "train"
    data_dir: str | None = None
    name: str | None = None
    repeat: int = 1

    @property
    def label(self) -> str:
        """``name:split``, the value of this source's rows in the ``source`` column."""
        return f"{self.name or os.path.basename(str(self.dataset).rstrip('/')) or self.dataset}:{self.split}"


def parse_sources(
    entries: Sequence[Mapping[str, Any] | Source], data_dir: str | os.PathLike | None = None
) -> list[Source]:
    """``entries`` as :class:`Source` objects (``data_dir`` filled in where a source names none).
    A bad entry, an unknown key or two sources with the same label is a :class:`DataError` naming it."""
    if isinstance(entries, (str, Mapping)) or not entries:
        raise DataError(
            f"datasets: expected a non-empty list of sources ({{dataset: NAME, split: SPLIT}}), got {entries!r}"
        )
    out: list[Source] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Source):
            source = entry
        else:
            if not isinstance(entry, Mapping) or "dataset" not in entry:
                raise DataError(f"datasets[{i}]: expected a mapping with a 'dataset' key, got {entry!r}")
            unknown = sorted(set(entry) - _KEYS)
            if unknown:
                raise DataError(f"datasets[{i}]: unknown key(s) {unknown}; known keys: {sorted(_KEYS)}")
            source = Source(
                dataset=str(entry["dataset"]),
                split=str(entry.get("split") or "train"),
                data_dir=str(entry["data_dir"]) if entry.get("data_dir") else None,
                name=str(entry["name"]) if entry.get("name") else None,
                repeat=entry.get("repeat", 1),
            )
            if not isinstance(source.repeat, int) or isinstance(source.repeat, bool) or source.repeat < 1:
                raise DataError(f"datasets[{i}]: repeat must be a whole number >= 1, got {source.repeat!r}")
        if source.data_dir is None and data_dir is not None:
            source = Source(source.dataset, source.split, os.fspath(data_dir), source.name, source.repeat)
        out.append(source)
    labels = Counter(s.label for s in out)
    twice = sorted(label for label, n in labels.items() if n > 1)
    if twice:
        raise DataError(
            f"datasets: the source(s) {twice} are listed more than once (give each a distinct 'name')"
        )
    return out


def load_sources(
    entries: Sequence[Mapping[str, Any] | Source],
    data_dir: str | os.PathLike | None = None,
    *,
    symprec: float = 0.1,
    num_proc: int | None = None,
    keep_columns: bool | Sequence[str] = False,
) -> Dataset:
    """One ``Dataset`` of every source's split in the order given: the normalised columns, the
    ``keep_columns`` (module docstring; ``None`` in the rows of a source that lacks one) and
    ``source`` (each row's :attr:`Source.label`). Rows a loader skips are warned about as usual."""
    from hfmat.data.loaders import NORMALISED_COLUMNS, load_crystal_dataset

    sources = parse_sources(entries, data_dir)
    loaded = [
        load_crystal_dataset(
            source.dataset,
            data_dir=source.data_dir,
            splits=[source.split],
            symprec=symprec,
            num_proc=num_proc,
        )[source.split]
        for source in sources
    ]
    extra = _extra_columns(loaded, sources, keep_columns, NORMALISED_COLUMNS)
    parts = []
    for source, ds in zip(sources, loaded):
        for name, feature in extra.items():
            if name not in ds.column_names:
                ds = ds.add_column(name, [None] * len(ds), feature=feature)
            elif ds.features[name] != feature:
                try:
                    ds = ds.cast_column(name, feature)
                except (TypeError, ValueError) as err:
                    raise DataError(
                        f"datasets: column {name!r} of {source.label} ({ds.features[name]}) does not "
                        f"cast to {feature}, its type in an earlier source: {err}"
                    ) from None
        ds = ds.select_columns([*NORMALISED_COLUMNS, *extra])
        parts.append(ds.add_column(SOURCE_COLUMN, [source.label] * len(ds)))
    return concatenate_datasets(parts)


def _extra_columns(loaded, sources, keep_columns, normalised) -> dict:
    """``{column: feature}`` of the columns ``keep_columns`` asks for beyond ``normalised``, each
    typed as in the first source that has it."""
    if keep_columns is False or keep_columns is None:
        return {}
    found: dict = {}
    for ds in loaded:
        for name, feature in ds.features.items():
            if name not in normalised and name != SOURCE_COLUMN:
                found.setdefault(name, feature)
    if keep_columns is True:
        return found
    if isinstance(keep_columns, str) or not all(isinstance(c, str) for c in keep_columns):
        raise DataError(f"keep_columns: expected True or a list of column names, got {keep_columns!r}")
    missing = [c for c in keep_columns if c not in found and c not in normalised]
    if missing:
        raise DataError(
            f"keep_columns: {missing} are columns of none of the sources "
            f"{[s.label for s in sources]} (their other columns: {sorted(found)})"
        )
    return {c: found[c] for c in keep_columns if c in found}


def source_counts(data: Dataset) -> dict[str, int]:
    """Rows per source label, in the order the sources first occur."""
    return dict(Counter(data[SOURCE_COLUMN]))


def holdout_by_source(data: Dataset, n: int, seed: int) -> tuple[Dataset, Dataset]:
    """``(rest, held_out)``: ``n`` rows held out in all, from every source in proportion to its rows
    (at least one from each that has two or more), each source's drawn under ``seed``."""
    counts = source_counts(data)
    total = sum(counts.values())
    if not 0 < n < total:
        raise DataError(f"eval_holdout {n} must be between 1 and the {total} rows of the sources less one")
    share = {label: max(1, round(n * c / total)) if c > 1 else 0 for label, c in counts.items()}
    labels = data[SOURCE_COLUMN]
    keep, held = [], []
    for label in counts:
        rows = [i for i, x in enumerate(labels) if x == label]
        part = data.select(rows)
        if share[label] == 0:
            keep.append(part)
            continue
        split = part.train_test_split(test_size=share[label], seed=int(seed), shuffle=True)
        keep.append(split["train"])
        held.append(split["test"])
    return concatenate_datasets(keep), concatenate_datasets(held)


def repeat_by_source(data: Dataset, sources: Sequence[Source]) -> Dataset:
    """``data`` with the rows of each source whose ``repeat`` is above 1 that many times in all
    (to weigh a small source up in training; the copies are shuffled in by the data loader)."""
    extra = []
    labels = data[SOURCE_COLUMN]
    for source in sources:
        if source.repeat > 1:
            rows = [i for i, x in enumerate(labels) if x == source.label]
            extra += [data.select(rows)] * (source.repeat - 1)
    return concatenate_datasets([data, *extra]) if extra else data
