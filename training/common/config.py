"""Training configs: the keys every script takes (``DEFAULTS``), the command-line flags, config
files (YAML or JSON) and ``--set KEY=VALUE`` overrides."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch


class ConfigError(ValueError):
    """A training config file is missing, unreadable or has a bad value; the message names it."""


#: The config keys every training script takes, with their defaults. A script's own ``DEFAULTS``
#: is ``{**common.DEFAULTS, ...}``: its model keys, and its own values for the keys whose best
#: default differs between scripts (weight decay, betas, batch sizes, seed, output_dir, model_name).
DEFAULTS: dict[str, Any] = {
    # data
    "dataset": "perov_5",  # a load_crystal_dataset source (name or folder)
    # folder holding a benchmark's CSV files; a relative path is taken from the directory the run
    # starts in (the repository root in the README: ../shared/data); --data-dir overrides it
    "data_dir": None,
    "train_split": "train",
    "eval_split": None,  # None: hold out `eval_holdout` rows of the training split
    "eval_holdout": 300,
    "max_train_samples": None,
    "max_eval_samples": None,
    # optimisation
    "lr": 1e-3,
    "min_lr_ratio": 0.0,
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "warmup_steps": 100,
    "epochs": 10,
    "max_steps": None,  # overrides epochs when set
    "per_device_batch_size": 16,
    "eval_batch_size": 32,
    "gradient_accumulation_steps": 1,
    "max_grad_norm": 1.0,
    "mixed_precision": "no",  # "no" or "bf16"
    "seed": 0,
    # bookkeeping
    "output_dir": "runs/train",
    "final_dir": None,  # None: <output_dir>/final
    "log_every": 10,
    "eval_every": 200,
    "save_every": 500,
    "total_limit": 3,
    "num_threads": None,
    "max_minutes": None,  # stop (and finish) after this much wall time
    "model_name": "model",
    "dataset_note": "",
}


#: The config keys that say which data a run trains on: a ``dataset_note`` written in a config file
#: describes that file's data, so overriding one of these drops it (unless the note is set too).
DATA_KEYS = ("dataset", "train_split", "eval_split", "eval_holdout", "max_train_samples")


def training_arguments(description: str, *, config_help: str, init_from_help: str) -> argparse.ArgumentParser:
    """The flags both scripts take: --config, --data-dir, --init-from, --resume, --output-dir,
    --stop-after-steps and --set KEY=VALUE. A script adds its own before parsing."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the benchmark's CSV files (overrides the config's data_dir; a relative "
        "path is from the current directory)",
    )
    p.add_argument("--init-from", default=None, help=init_from_help)
    p.add_argument("--resume", default=None, help="checkpoint folder, or 'latest' under output_dir")
    p.add_argument(
        "--output-dir",
        default=None,
        help="folder for checkpoints and logs; the final model goes to <output-dir>/final (the "
        "config's final_dir is ignored unless given again with --set final_dir=...)",
    )
    p.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        help="save a checkpoint and exit after this many optimizer steps (the schedule is unchanged)",
    )
    p.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys (repeatable)",
    )
    return p


def config_from_args(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """The run's config: ``--config`` over ``defaults``, then ``--set``, ``--data-dir``,
    ``--init-from``, ``--output-dir`` (which also sends the final model to ``<output-dir>/final``). A ``data_dir`` that is not a folder is an error that says
    where it was looked for; overriding the data (:data:`DATA_KEYS`) drops the file's ``dataset_note``,
    and replacing its benchmark by a file, folder or repo id drops the file's ``data_dir``."""
    from_file = load_config(args.config, defaults)
    cfg = merge_overrides(from_file, args.set)
    if getattr(args, "data_dir", None):
        cfg["data_dir"] = args.data_dir
    if args.init_from:
        cfg["init_from"] = args.init_from
    if args.output_dir:
        cfg["output_dir"] = args.output_dir
        if cfg["final_dir"] == from_file["final_dir"]:  # the file's final_dir went with its output_dir
            cfg["final_dir"] = None  # -> <output_dir>/final, never the file's (e.g. a shipped folder)
    if cfg["dataset_note"] == from_file["dataset_note"] and any(cfg[k] != from_file[k] for k in DATA_KEYS):
        cfg["dataset_note"] = ""  # it described the config file's data, not this run's
    if cfg["dataset"] != from_file["dataset"] and cfg["data_dir"] == from_file["data_dir"]:
        from hfmat.data.catalog import BENCHMARKS

        if cfg["dataset"] not in BENCHMARKS:  # the file's data_dir locates its benchmark's CSVs
            cfg["data_dir"] = None
    if cfg["data_dir"] and not Path(cfg["data_dir"]).is_dir():
        raise ConfigError(
            f"data_dir {cfg['data_dir']!r} is not a folder (looked for {Path(cfg['data_dir']).resolve()}; "
            "a relative path is from the current directory): pass --data-dir FOLDER"
        )
    return cfg


def load_config(path: str | os.PathLike, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) config into a dict over ``defaults``.

    Keys not in ``defaults`` are an error when ``defaults`` is given (a typo would otherwise be
    silently ignored). A bare name such as ``tiny`` is not resolved here: pass a path.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config {path}: unknown extension {path.suffix!r} (use .yaml, .yml or .json)")
    except (ValueError, ImportError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"config {path}: cannot parse: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping, got {type(data).__name__}")
    if defaults is None:
        return dict(data)
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise ConfigError(f"config {path}: unknown keys {unknown}; known keys: {sorted(defaults)}")
    return {**defaults, **data}


def merge_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key=value`` strings (values parsed as YAML scalars: ``lr=3e-4``, ``bf16=false``)."""
    import yaml

    out = dict(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        if key not in out:
            raise ConfigError(f"override {item!r}: unknown key {key!r}; known keys: {sorted(out)}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def flat_hparams(config: dict[str, Any]) -> dict[str, Any]:
    """Config values tensorboard can record as hparams (int/float/str/bool; others as str)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "None"
        else:
            out[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def set_threads(num_threads: int | None) -> None:
    """``torch.set_num_threads`` when a count is given (long CPU runs on a shared machine use 1)."""
    if num_threads:
        torch.set_num_threads(int(num_threads))
