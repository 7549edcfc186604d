"""The train/eval split of a run and its dataloaders."""

from __future__ import annotations

from typing import Any

import torch


def holdout_and_limit(train, evalset, cfg: dict[str, Any]):
    """The train and eval ``datasets.Dataset``: ``evalset`` (rows of ``eval_split``), or when it is
    None ``eval_holdout`` rows of ``train`` drawn under ``seed``; then the first
    ``max_train_samples`` / ``max_eval_samples`` rows of each when those are set."""
    if evalset is None:
        parts = train.train_test_split(
            test_size=int(cfg["eval_holdout"]), seed=int(cfg["seed"]), shuffle=True
        )
        train, evalset = parts["train"], parts["test"]
    if cfg["max_train_samples"]:
        train = train.select(range(min(len(train), int(cfg["max_train_samples"]))))
    if cfg["max_eval_samples"]:
        evalset = evalset.select(range(min(len(evalset), int(cfg["max_eval_samples"]))))
    return train, evalset


def dataloaders(train, evalset, collator, cfg: dict[str, Any], generator: torch.Generator | None = None):
    """The shuffled training loader (``per_device_batch_size``, whole batches only; ``generator``
    draws its order) and the eval loader (``eval_batch_size``, in order)."""
    train_loader = torch.utils.data.DataLoader(
        train,
        batch_size=int(cfg["per_device_batch_size"]),
        shuffle=True,
        collate_fn=collator,
        drop_last=True,
        generator=generator,
    )
    eval_loader = torch.utils.data.DataLoader(
        evalset, batch_size=int(cfg["eval_batch_size"]), collate_fn=collator
    )
    return train_loader, eval_loader


def data_scope(train) -> dict[str, Any]:
    """What a run trains on, for ``training_summary.json`` (``data``): the elements and the cell sizes
    (atom counts) of the ``train`` rows, from their ``formula`` and ``num_atoms`` columns, and how
    many crystals there are. ``hfmat generate``/``diffuse`` read it to warn about a prompt outside
    it. Empty when the dataset lacks those columns."""
    from pymatgen.core import Composition

    if not {"formula", "num_atoms"} <= set(train.column_names):
        return {}
    elements: set[str] = set()
    for formula in set(train["formula"]):
        elements.update(el.symbol for el in Composition(formula).elements)
    return {
        "crystals": len(train),
        "elements": sorted(elements),
        "num_atoms": sorted({int(n) for n in train["num_atoms"]}),
    }
