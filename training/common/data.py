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


def sources_label(cfg: dict[str, Any]) -> str:
    """The ``dataset`` name of a run with several sources (``datasets:``): their labels joined with
    ``" + "``, for the training record, the card and ``hfmat.scope``."""
    from hfmat.data.sources import parse_sources

    return " + ".join(s.label for s in parse_sources(cfg["datasets"], cfg["data_dir"]))


def split_sources(cfg: dict[str, Any], prepare=None, *, keep_columns=False):
    """``(train, evalset, scope)`` of a config with ``datasets:`` (several sources,
    ``hfmat.data.sources``): the sources loaded and concatenated (with ``keep_columns``, their
    property columns too: :func:`hfmat.data.sources.load_sources`), ``prepare`` (e.g. featurization)
    applied to all of them, ``eval_holdout`` rows held out from every source in proportion (under
    ``seed``), ``max_train/eval_samples`` applied, then each source's ``repeat``. ``scope`` is
    :func:`data_scope` of the training rows plus ``sources`` (label -> dataset, split, train and eval
    crystals before ``repeat``, repeat)."""
    from hfmat.data.sources import (
        holdout_by_source,
        load_sources,
        parse_sources,
        repeat_by_source,
        source_counts,
    )
    from hfmat.hub.provenance import portable_path

    from .config import ConfigError

    if cfg["eval_split"]:
        raise ConfigError(
            "eval_split is not used with datasets: the eval rows are held out from every source"
        )
    sources = parse_sources(cfg["datasets"], cfg["data_dir"])
    data = load_sources(sources, keep_columns=keep_columns)
    if prepare is not None:
        data = prepare(data)
    train, evalset = holdout_by_source(data, int(cfg["eval_holdout"]), int(cfg["seed"]))
    train, evalset = holdout_and_limit(train, evalset, cfg)  # max_train/eval_samples
    n_train, n_eval = source_counts(train), source_counts(evalset)
    scope = data_scope(train)
    scope["sources"] = {
        s.label: {
            "dataset": portable_path(s.dataset),
            "split": s.split,
            "train_crystals": n_train.get(s.label, 0),
            "eval_crystals": n_eval.get(s.label, 0),
            "repeat": s.repeat,
        }
        for s in sources
    }
    return repeat_by_source(train, sources), evalset, scope
