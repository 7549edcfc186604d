"""Crystal-text pairs for Crystal CLIP: a split with its descriptions and graphs, and the collator."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hfmat.data.descriptions import TEXT_COLUMNS

#: A text style that names no composition (:func:`structure_text`): the crystal system, the space
#: group and the structure type alone, so a model trained on it must read the structure words.
STRUCTURE_COLUMN = "text_structure"
#: Every text column a Crystal CLIP can train on: the styles of :mod:`hfmat.data.descriptions` and
#: :data:`STRUCTURE_COLUMN`.
CLIP_TEXT_COLUMNS = (*TEXT_COLUMNS, STRUCTURE_COLUMN)


def structure_text(row: Mapping[str, Any]) -> str:
    """``"a cubic crystal in the Pm-3m space group (No. 221) with the perovskite structure"`` from a
    row's description columns (``crystal_system``, ``spacegroup_symbol``, ``spacegroup_number``,
    ``structure_type``): the sentence's structure words without the formula or the properties."""
    system = row["crystal_system"]
    text = (
        f"{'an' if system[:1] in tuple('aeiou') else 'a'} {system} crystal in the "
        f"{row['spacegroup_symbol']} space group (No. {row['spacegroup_number']})"
    )
    return text + (f" with the {row['structure_type']} structure" if row["structure_type"] else "")


def add_structure_texts(ds):
    """``ds`` with the :data:`STRUCTURE_COLUMN` column (batched ``Dataset.map``, cached by datasets)."""
    columns = ("crystal_system", "spacegroup_symbol", "spacegroup_number", "structure_type")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"add_structure_texts: the dataset lacks the description columns {missing} "
            "(hfmat.data.descriptions.add_descriptions adds them)"
        )

    def batch(rows):
        n = len(rows["crystal_system"])
        return {STRUCTURE_COLUMN: [structure_text({c: rows[c][i] for c in columns}) for i in range(n)]}

    return ds.map(batch, batched=True, desc="structure texts")


def clip_dataset(
    source: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    split: str,
    num_proc: int | None = None,
    properties: list[str] | None = None,
):
    """One split of ``source`` (any :func:`hfmat.data.load_crystal_dataset` source) with the
    description columns (:func:`hfmat.data.descriptions.add_descriptions`) and the graph columns
    (:func:`hfmat.data.featurize_diffusion`) and the formula-free :data:`STRUCTURE_COLUMN`; every step
    cached by datasets."""
    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(source, data_dir=data_dir, splits=[split], num_proc=num_proc)[split]
    return add_clip_columns(ds, properties=properties, num_proc=num_proc)


def add_clip_columns(ds, *, properties: list[str] | None = None, num_proc: int | None = None):
    """A loaded split (or several sources' rows, :func:`hfmat.data.sources.load_sources`) with what
    :func:`clip_dataset` adds: the descriptions, the graph columns and :data:`STRUCTURE_COLUMN`."""
    from hfmat.data import featurize_diffusion
    from hfmat.data.descriptions import add_descriptions

    ds = add_descriptions(ds, properties=properties, num_proc=num_proc)
    return add_structure_texts(featurize_diffusion(ds, num_proc=num_proc))


class ClipCollator:
    """Rows with graph and text columns -> a :class:`hfmat.data.GraphCollator` batch plus the
    tokenized texts (``input_ids``, ``attention_mask``).

    ``column`` fixes the text column; ``None`` draws one of ``text_columns`` per row (training
    sees every style of every crystal), from a generator seeded with ``seed``."""

    def __init__(
        self,
        tokenizer,
        *,
        column: str | None = None,
        text_columns: Sequence[str] = TEXT_COLUMNS,
        max_length: int = 128,
        seed: int = 0,
    ):
        from hfmat.data import GraphCollator

        if column is None and not text_columns:
            raise ValueError("ClipCollator: give a column or a non-empty text_columns")
        self.tokenizer = tokenizer
        self.column = column
        self.text_columns = tuple(text_columns)
        self.max_length = max_length
        self.graphs = GraphCollator()
        self.generator = torch.Generator().manual_seed(seed)

    def texts(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        if self.column is not None:
            columns = [self.column] * len(rows)
        else:
            picks = torch.randint(len(self.text_columns), (len(rows),), generator=self.generator)
            columns = [self.text_columns[int(i)] for i in picks]
        try:
            return [str(row[c]) for row, c in zip(rows, columns)]
        except KeyError as err:
            raise KeyError(
                f"ClipCollator: a row has no text column {err}; it has {sorted(rows[0])}"
            ) from None

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.graphs(rows)
        encoded = self.tokenizer(
            self.texts(rows),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        batch["input_ids"] = encoded["input_ids"]
        batch["attention_mask"] = encoded["attention_mask"]
        return batch
