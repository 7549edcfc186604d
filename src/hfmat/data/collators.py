"""Batch collators: causal-LM token batches (padded or packed) and crystal graphs.

:class:`CausalLMCollator` takes rows with ``input_ids`` (``<bos>`` + CIF + ``<eos>``, as written
by :func:`hfmat.data.featurize.tokenize_cifs`) and returns ``input_ids`` and ``labels`` (LongTensor),
plus:

- ``mode="pad"`` (default): one row per sequence, right-padded with the tokenizer's ``<pad>``
  (transformers' ``DataCollatorForLanguageModeling(mlm=False)``); ``attention_mask``; ``labels``
  are the ids with -100 on padding. ``<pad>`` must differ from ``<eos>``, or the end of every CIF
  would be masked out of the loss.
- ``mode="pack"``: whole sequences are packed in order (first fit) into rows of at most
  ``max_length`` tokens; ``position_ids`` restart at 0 for each sequence and no ``attention_mask``
  is returned, so transformers' masking builds a block-diagonal causal mask (a token attends only
  to its own CIF; GPT-2 and other models using ``create_causal_mask``). transformers only does this
  when no cache is in use: call the model with ``use_cache=False`` (or set
  ``model.config.use_cache = False`` for training), else CIFs in one row attend to each other.
  ``labels`` are -100 on the
  first token of each sequence (it is not predicted from the previous CIF) and on the padding
  that fills the last columns.

A sequence longer than ``max_length`` raises (filter them with ``tokenize_cifs(max_length=...)``).
:class:`GraphCollator` (re-exported from :mod:`hfmat.data.graph`) batches crystals for diffusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import DataCollatorForLanguageModeling

from hfmat.data.errors import DataError
from hfmat.data.graph import GraphCollator

__all__ = ["CausalLMCollator", "CifLMCollator", "GraphCollator"]


class CausalLMCollator:
    """Collate token rows for causal-LM training (see the module docstring)."""

    def __init__(
        self,
        tokenizer,
        *,
        mode: str = "pad",
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        if mode not in ("pad", "pack"):
            raise DataError(f"mode must be 'pad' or 'pack', got {mode!r}")
        if tokenizer.pad_token_id is None:
            raise DataError("the tokenizer has no <pad> token; the LM collator needs one distinct from <eos>")
        if tokenizer.pad_token_id == tokenizer.eos_token_id:
            raise DataError(
                f"<pad> and <eos> share id {tokenizer.pad_token_id}: labels on padding are masked, so "
                "every <eos> would be dropped from the loss; use a tokenizer with a distinct <pad>"
            )
        if mode == "pack" and not max_length:
            raise DataError("mode='pack' needs max_length (the length of a packed row)")
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_token_id = int(tokenizer.pad_token_id)
        self._pad = DataCollatorForLanguageModeling(
            tokenizer, mlm=False, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
        )

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise DataError("cannot collate an empty list of rows")
        sequences = []
        for i, row in enumerate(rows):
            if "input_ids" not in row:
                raise DataError(f"row {i} has no 'input_ids'; it has {sorted(row)}")
            ids = row["input_ids"]
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
            if not ids:
                raise DataError(f"row {i} has no tokens")
            if self.max_length is not None and len(ids) > self.max_length:
                raise DataError(
                    f"row {i} has {len(ids)} tokens > max_length={self.max_length}; "
                    "drop such rows with tokenize_cifs(max_length=...)"
                )
            sequences.append([int(t) for t in ids])
        if self.mode == "pad":
            return self._pad([{"input_ids": ids} for ids in sequences])
        return self._pack(sequences)

    def _pack(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        rows: list[list[list[int]]] = []
        used: list[int] = []
        for ids in sequences:  # first fit, in order
            for r, total in enumerate(used):
                if total + len(ids) <= self.max_length:
                    rows[r].append(ids)
                    used[r] += len(ids)
                    break
            else:
                rows.append([ids])
                used.append(len(ids))
        width = max(used)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            width = min(-(-width // m) * m, max(self.max_length, width))
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        for r, packed in enumerate(rows):
            start = 0
            for ids in packed:
                n = len(ids)
                input_ids[r, start : start + n] = torch.tensor(ids)
                labels[r, start + 1 : start + n] = torch.tensor(ids[1:])
                position_ids[r, start : start + n] = torch.arange(n)
                start += n
            position_ids[r, start:] = torch.arange(width - start)  # the padding is its own segment
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


#: The same collator under the name the training script uses.
CifLMCollator = CausalLMCollator
