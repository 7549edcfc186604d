"""What a model was trained on, and from which model, recorded without local paths.

The training scripts write ``training_summary.json`` (the run's config, its measured summary and
the earlier stages of a continued run) into the model folder, and the model cards are rendered from
it; ``hfmat push`` publishes both. So nothing in them may be a path of the machine that trained:

- :func:`portable_config` keeps relative paths as they were given (relative to the directory the run
  started in) and shortens an absolute one to its path below that directory, or else to its last
  component (``/home/me/cifs/mp20.csv`` -> ``mp20.csv``).
- :func:`base_model_of` is the Hub repo id a run started from (``--init-from``): a repo id as given,
  or the repo id a local folder's card declares (``hfmat.repo_id``, as every hfmat card and the
  shipped models record); ``None`` for a folder that declares none.
- :func:`data_sentence` and :func:`dataset_ids` say which data one stage trained on, for the cards.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hfmat.hub.resolve import _is_repo_id

__all__ = [
    "base_model_of",
    "fine_tuned_from",
    "data_sentence",
    "dataset_ids",
    "dataset_kind",
    "drop_load_paths",
    "origin_sentence",
    "own_stages",
    "portable_config",
    "portable_path",
    "read_training_record",
    "stages",
]


def portable_path(value: str | os.PathLike) -> str:
    """``value`` without the machine's absolute path: relative paths (and names, repo ids) unchanged,
    an absolute path inside the current directory relative to it, any other absolute path its last
    component."""
    text = os.fspath(value)
    if not os.path.isabs(text):
        return text
    path, here = Path(text).resolve(), Path.cwd().resolve()
    if path.is_relative_to(here) and path != here:
        return path.relative_to(here).as_posix()
    return Path(text).name


def portable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every absolute path among its string values made portable (:func:`portable_path`),
    also inside its lists and mappings (a ``datasets`` list of sources)."""

    def portable(v):
        if isinstance(v, str):
            return portable_path(v) if os.path.isabs(v) else v
        if isinstance(v, Mapping):
            return {k: portable(x) for k, x in v.items()}
        return [portable(x) for x in v] if isinstance(v, list) else v

    return {k: portable(v) for k, v in config.items()}


def base_model_of(init_from: str | os.PathLike | None) -> str | None:
    """The Hub repo id of the model a run started from: ``init_from`` itself when it is a repo id and
    not a local folder; for a local folder or a shipped model's name, the repo id its card declares;
    ``None`` when there is none to name (a fresh run, or a folder whose card declares no repo id)."""
    if not init_from:
        return None
    from hfmat.hub.retarget import card_repo_id
    from hfmat.shipped import ALL_NAMES, shipped_model

    name = os.fspath(init_from)
    path = Path(name).expanduser()
    if path.is_dir():
        return card_repo_id(path)
    if name in ALL_NAMES:
        return card_repo_id(shipped_model(name))
    return name if _is_repo_id(name) else None


def read_training_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``folder/training_summary.json`` (``config``, ``summary``, optionally ``previous`` stages and
    ``base_model``), or None when the folder has none."""
    import json

    path = Path(folder) / "training_summary.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def stages(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every stage of a training record, oldest first: the earlier ones (``previous``), then the last."""
    return [*record.get("previous", []), {k: v for k, v in record.items() if k != "previous"}]


def dataset_kind(dataset: str | os.PathLike) -> str:
    """How ``load_crystal_dataset`` reads ``dataset``: "benchmark" (a CDVAE benchmark name), "local"
    (a file or folder here) or "hub" (a dataset repo id ``org/name``)."""
    from hfmat.data.catalog import BENCHMARKS

    name = os.fspath(dataset)
    if name in BENCHMARKS:
        return "benchmark"
    if Path(name).exists() or "/" not in name or not _is_repo_id(name):
        return "local"
    return "hub"


def _kind(stage: Mapping[str, Any]) -> str:
    """A stage's dataset kind as recorded; a record written before it was recorded names only
    benchmarks by name (anything else is reported as local data, never as a Hub dataset)."""
    from hfmat.data.catalog import BENCHMARKS

    name = str(stage.get("config", {}).get("dataset"))
    return stage.get("dataset_kind") or ("benchmark" if name in BENCHMARKS else "local")


def data_sentence(stage: Mapping[str, Any]) -> str:
    """One stage's data (a stage of :func:`stages`): source, split, crystals trained on and held out
    when the summary counts them, e.g. "`perov_5` split `val` (3,487 crystals; 300 held out for the
    eval loss)"."""
    config, summary = stage.get("config", {}), stage.get("summary", {})
    sources = (stage.get("data") or {}).get("sources")
    if sources:  # several sources (train_cif_lm.py's `datasets`), each counted
        parts = [
            f"`{label}` ({s['train_crystals']:,} crystals"
            + (f", used {s['repeat']} times per epoch" if s.get("repeat", 1) > 1 else "")
            + f"; {s['eval_crystals']:,} held out)"
            for label, s in sources.items()
        ]
        return ", ".join(parts) + (
            f": {summary['train_crystals']:,} training rows per epoch, {summary['eval_crystals']:,} crystals "
            "held out for the eval loss"
            if "train_crystals" in summary
            else ""
        )
    name = portable_path(str(config.get("dataset")))
    source = f"`{name}`" if _kind(stage) != "local" else f"local data `{name}`"
    text = f"{source} split `{config.get('train_split')}`"
    n_train, n_eval = summary.get("train_crystals"), summary.get("eval_crystals")
    if config.get("eval_split"):
        held = f"eval loss on split `{config['eval_split']}`" + (f", {n_eval:,} crystals" if n_eval else "")
    else:
        held = f"{n_eval if n_eval is not None else config.get('eval_holdout')} held out for the eval loss"
    return text + (f" ({n_train:,} crystals; {held})" if n_train is not None else f" ({held})")


def own_stages(record: Mapping[str, Any], repo_id: str) -> list[dict[str, Any]]:
    """The stages that made this model: the last ones, back to the first that was fine-tuned from
    another repo (the stages before that made the base model, whose own card lists them)."""
    runs = stages(record)
    for i in range(len(runs) - 1, -1, -1):
        base = runs[i].get("base_model")
        if base and base != repo_id:
            return runs[i:]
    return runs


def fine_tuned_from(record: Mapping[str, Any] | None, repo_id: str) -> str | None:
    """The Hub repo id this model was fine-tuned from: the base of the first of its own stages
    (:func:`own_stages`), so a model continued from an earlier version of itself still names the
    model its first stage started from; None for a model trained from scratch."""
    if not record:
        return None
    base = own_stages(record, repo_id)[0].get("base_model")
    return base if base and base != repo_id else None


def dataset_ids(record: Mapping[str, Any] | None, repo_id: str) -> list[str]:
    """The Hub dataset ids a model trained on over its own stages (:func:`own_stages`): a benchmark
    as hfmat publishes it (``perov_5`` -> ``hfmat/perov-5``) or a dataset repo id; local data has none."""
    from hfmat.hub.cards import dataset_repo_id

    out: list[str] = []
    for stage in own_stages(record, repo_id) if record else []:
        config = stage.get("config", {})
        several = [{"config": {"dataset": s.get("dataset")}} for s in config.get("datasets") or []]
        for one in several or [stage]:
            name, kind = str(one.get("config", {}).get("dataset")), _kind(one)
            if kind == "local":
                continue
            name = dataset_repo_id(name) if kind == "benchmark" else name
            if name not in out:
                out.append(name)
    return out


def origin_sentence(stage: Mapping[str, Any], repo_id: str) -> str | None:
    """How a stage started (None for a fresh run): fine-tuned from another model's repo, continued
    from an earlier version of this one, or from a local folder that declares no repo id."""
    init = stage.get("config", {}).get("init_from")
    if not init:
        return None
    base = stage.get("base_model")
    if base and base != repo_id:
        return f"Fine-tuned from [`{base}`](https://huggingface.co/{base}) (`--init-from`)."
    if base:
        return "Continued from an earlier version of this model (`--init-from`)."
    if "base_model" in stage:
        return (
            f"Started from the local folder `{portable_path(init)}` (`--init-from`), whose card "
            "declares no Hub repo id."
        )
    return f"Started from `{portable_path(init)}` (`--init-from`)."


def drop_load_paths(folder: str | os.PathLike) -> None:
    """Remove ``_name_or_path`` from the configs diffusers saved in ``folder`` (``model_index.json``,
    ``denoiser/config.json``, ``*/scheduler_config.json``): ``from_pretrained`` records there the
    path it loaded from (a folder of this machine, or a training run's), which is no fact of the model.
    The files are rewritten as diffusers writes them (sorted keys, indent 2)."""
    import json

    index = Path(folder) / "model_index.json"
    for path in [*([index] if index.is_file() else []), *sorted(Path(folder).glob("*/*config.json"))]:
        config = json.loads(path.read_text())
        if isinstance(config, dict) and config.pop("_name_or_path", None) is not None:
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
