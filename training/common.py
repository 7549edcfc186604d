"""Training-loop pieces shared by hfmat's Accelerate scripts (train_cif_lm.py, train_diffusion.py).

Everything here is generic: the config keys and command-line flags both scripts take, config
files, the Accelerator, AdamW with warm-up and cosine decay, checkpoint/resume helpers, the
optimisation loop (``TrainingLoop``) and logging. The scripts keep their model- and data-specific
parts: datasets, the model, the loss, evaluation and the final Hub-ready folder.

Kept backwards compatible: other scripts import these names.

Resume, exactly:
- ``make_accelerator`` turns on automatic checkpoint naming (``<output_dir>/checkpoints/
  checkpoint_<i>``) and a seedable sampler, so a shuffled epoch is fixed by ``(seed, epoch)``.
- ``TrainingProgress`` (optimizer step, epoch, batches done in that epoch) is registered for
  checkpointing, so ``save_state`` writes it beside the model, optimizer, scheduler and RNG states.
- ``resume_from_checkpoint`` loads a checkpoint and sets ``project_configuration.iteration`` to the
  next index (Accelerate does not, and the next ``save_state`` would otherwise overwrite an older
  slot); ``epoch_batches`` then re-seeds the epoch and skips the batches already done
  (``accelerate.skip_first_batches``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DEFAULTS",
    "ConfigError",
    "TrainingLoop",
    "accelerator_for",
    "config_from_args",
    "dataloaders",
    "end_training",
    "holdout_and_limit",
    "start_trackers",
    "write_training_summary",
    "final_dir_for",
    "finish",
    "optimizer_and_scheduler_for",
    "run_main",
    "start_or_resume",
    "total_steps_for",
    "training_arguments",
    "TrainingProgress",
    "build_optimizer",
    "build_scheduler",
    "build_optimizer_and_scheduler",
    "checkpoint_index",
    "epoch_batches",
    "find_latest_checkpoint",
    "flat_hparams",
    "load_config",
    "make_accelerator",
    "merge_overrides",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_threads",
    "StepTimer",
    "cosine_total_steps",
]


class ConfigError(ValueError):
    """A training config file is missing, unreadable or has a bad value; the message names it."""


# ----------------------------------------------------------------------------------- configs

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
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
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


# -------------------------------------------------------------------------------------- data


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


# ------------------------------------------------------------------------------- accelerator


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def make_accelerator(
    output_dir: str | os.PathLike,
    *,
    gradient_accumulation_steps: int = 1,
    mixed_precision: str = "no",
    seed: int = 0,
    total_limit: int | None = 3,
    log_with_tensorboard: bool = True,
    cpu: bool | None = None,
):
    """An ``Accelerator`` for a script that runs under ``accelerate launch`` or ``torchrun``.

    ``cpu=None`` means: CPU when no GPU is visible. ``mixed_precision`` is ``"no"`` or ``"bf16"``
    (bf16 falls back to ``"no"`` on a GPU without bf16 support); fp16 is refused because it does
    nothing on CPU. Checkpoints go to ``<output_dir>/checkpoints/checkpoint_<i>`` and tensorboard
    logs to ``<output_dir>/logs`` (when tensorboard is installed).
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

    if mixed_precision not in ("no", "bf16"):
        raise ConfigError(f"mixed_precision must be 'no' or 'bf16', got {mixed_precision!r}")
    if cpu is None:
        cpu = not torch.cuda.is_available()
    if mixed_precision == "bf16" and not cpu and not torch.cuda.is_bf16_supported():
        mixed_precision = "no"
    output_dir = Path(output_dir)
    project = ProjectConfiguration(
        project_dir=str(output_dir),
        logging_dir=str(output_dir / "logs"),
        automatic_checkpoint_naming=True,
        total_limit=total_limit,
    )
    log_with = "tensorboard" if log_with_tensorboard and _tensorboard_available() else None
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=gradient_accumulation_steps,
        project_config=project,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed),
        log_with=log_with,
    )
    set_seed(seed)
    return accelerator


def accelerator_for(cfg: dict[str, Any]):
    """``make_accelerator`` with the config's output_dir, accumulation, precision, seed and total_limit."""
    return make_accelerator(
        Path(cfg["output_dir"]),
        gradient_accumulation_steps=int(cfg["gradient_accumulation_steps"]),
        mixed_precision=cfg["mixed_precision"],
        seed=int(cfg["seed"]),
        total_limit=cfg["total_limit"],
    )


# ------------------------------------------------------------------------ optimizer, schedule


def build_optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases, norms and 1-d parameters are not decayed)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


def build_scheduler(optimizer, warmup_steps: int, total_steps: int, num_processes: int = 1):
    """Linear warm-up then cosine decay (``transformers.get_cosine_schedule_with_warmup``).

    Accelerate's prepared scheduler steps once per process on every optimizer step, so the step
    counts are scaled by ``num_processes`` to keep the schedule in optimizer steps.
    """
    from transformers import get_cosine_schedule_with_warmup

    if total_steps <= 0:
        raise ConfigError(f"total_steps must be positive, got {total_steps}")
    return get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=int(warmup_steps) * num_processes,
        num_training_steps=int(total_steps) * num_processes,
    )


def build_optimizer_and_scheduler(
    model,
    *,
    lr: float,
    warmup_steps: int,
    total_steps: int,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    num_processes: int = 1,
):
    optimizer = build_optimizer(model, lr=lr, weight_decay=weight_decay, betas=betas)
    return optimizer, build_scheduler(optimizer, warmup_steps, total_steps, num_processes)


def optimizer_and_scheduler_for(model, cfg: dict[str, Any], total_steps: int, num_processes: int = 1):
    """``build_optimizer_and_scheduler`` with the config's lr, warm-up, weight decay and betas."""
    return build_optimizer_and_scheduler(
        model,
        lr=float(cfg["lr"]),
        warmup_steps=int(cfg["warmup_steps"]),
        total_steps=total_steps,
        weight_decay=float(cfg["weight_decay"]),
        betas=tuple(cfg["betas"]),
        num_processes=num_processes,
    )


# -------------------------------------------------------------------------- checkpoint/resume


@dataclass
class TrainingProgress:
    """Where a run stands; registered with ``accelerator.register_for_checkpointing``."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (per process)
    tokens: int = 0  # training tokens seen (all processes)

    def state_dict(self) -> dict[str, int]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "tokens": self.tokens,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.tokens = int(state.get("tokens", 0))


_CHECKPOINT_RE = re.compile(r"^checkpoint_(\d+)$")


def checkpoint_index(path: str | os.PathLike) -> int:
    """The ``i`` of an Accelerate ``checkpoint_<i>`` folder; ValueError for another name."""
    match = _CHECKPOINT_RE.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not an Accelerate checkpoint folder (checkpoint_<i>)")
    return int(match.group(1))


#: Written into a checkpoint folder once every process has saved into it: a folder without it was
#: being written when the run was killed.
CHECKPOINT_COMPLETE = "hfmat_checkpoint_complete.json"


def find_latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The highest-numbered complete ``<output_dir>/checkpoints/checkpoint_<i>``, or None if there
    is none. A newer folder without :data:`CHECKPOINT_COMPLETE` (a run killed while saving) is
    skipped with a warning; when no folder has the marker (written before it existed) the
    highest-numbered one is taken."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = sorted(
        (p for p in root.iterdir() if p.is_dir() and _CHECKPOINT_RE.match(p.name)),
        key=checkpoint_index,
        reverse=True,
    )
    complete = [p for p in found if (p / CHECKPOINT_COMPLETE).is_file()]
    if not complete:
        return found[0] if found else None
    for path in found[: found.index(complete[0])]:
        print(f"warning: {path} is incomplete (the run stopped while writing it); skipped", file=sys.stderr)
    return complete[0]


def save_checkpoint(accelerator) -> Path | None:
    """``accelerator.save_state()`` into the next ``checkpoint_<i>``, then (once every process has
    saved) :data:`CHECKPOINT_COMPLETE` written atomically into it; returns the folder it wrote."""
    accelerator.wait_for_everyone()
    path = accelerator.save_state()
    accelerator.wait_for_everyone()
    if not path:
        return None
    if accelerator.is_main_process:
        marker = Path(path) / CHECKPOINT_COMPLETE
        partial = marker.with_suffix(".partial")
        partial.write_text(json.dumps({"folder": Path(path).name}) + "\n")
        os.replace(partial, marker)
        print(f"checkpoint saved: {path}", flush=True)
    return Path(path)


def resume_from_checkpoint(accelerator, resume: str | os.PathLike | bool, output_dir: str | os.PathLike):
    """Load a checkpoint (``resume`` a folder, or True/"latest" for the newest under ``output_dir``).

    Returns the folder loaded, or None when ``resume`` is "latest" and there is none yet (a
    fresh start). Sets ``project_configuration.iteration`` past the loaded index so the next
    ``save_state`` writes a new slot.
    """
    if resume in (True, "latest", "auto"):
        path = find_latest_checkpoint(output_dir)
        if path is None:
            return None
    else:
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint folder not found: {path}")
        marked = list(path.parent.glob(f"*/{CHECKPOINT_COMPLETE}"))
        if marked and not (path / CHECKPOINT_COMPLETE).is_file():
            raise ValueError(
                f"--resume {path}: incomplete checkpoint (the run stopped while writing it); "
                f"use --resume latest or {max((m.parent for m in marked), key=checkpoint_index)}"
            )
    accelerator.load_state(str(path))
    accelerator.project_configuration.iteration = checkpoint_index(path) + 1
    if accelerator.is_main_process:
        _set_aside_incomplete(path)
    accelerator.wait_for_everyone()
    return path


def _set_aside_incomplete(loaded: Path) -> None:
    """Rename the incomplete ``checkpoint_<i>`` folders above the one loaded to
    ``checkpoint_<i>.incomplete`` (the next save_state writes a fresh ``checkpoint_<i>``; Accelerate
    refuses an existing one)."""
    for path in loaded.parent.iterdir():
        if (
            _CHECKPOINT_RE.match(path.name)
            and checkpoint_index(path) > checkpoint_index(loaded)
            and not (path / CHECKPOINT_COMPLETE).is_file()
        ):
            aside = path.with_name(f"{path.name}.incomplete")
            if aside.exists():
                import shutil

                shutil.rmtree(aside)
            path.rename(aside)


def start_or_resume(accelerator, resume, output_dir, *state) -> tuple[TrainingProgress, Path | None]:
    """A fresh ``TrainingProgress`` registered for checkpointing (then each of ``state``, in order),
    loaded from ``resume`` when given (see ``resume_from_checkpoint``); returns it and the folder
    loaded (None for a fresh start)."""
    progress = TrainingProgress()
    for obj in (progress, *state):
        accelerator.register_for_checkpointing(obj)
    resumed = resume_from_checkpoint(accelerator, resume, output_dir) if resume else None
    if resumed:
        accelerator.print(f"resumed from {resumed} at step {progress.step} (epoch {progress.epoch})")
    return progress, resumed


def epoch_batches(dataloader, epoch: int, skip: int = 0):
    """The prepared ``dataloader`` for ``epoch`` (seeded shuffle), minus its first ``skip`` batches."""
    from accelerate import skip_first_batches

    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(epoch)
    if skip:
        return skip_first_batches(dataloader, skip)
    return dataloader


# ------------------------------------------------------------------------------------ timing


class StepTimer:
    """Tokens (or samples) per second over the run, and a wall-clock budget."""

    def __init__(self, max_minutes: float | None = None):
        self.start = time.perf_counter()
        self.max_seconds = None if not max_minutes else float(max_minutes) * 60.0
        self.count = 0

    def add(self, n: int) -> None:
        self.count += int(n)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.count / max(self.elapsed, 1e-9)

    def out_of_time(self) -> bool:
        return self.max_seconds is not None and self.elapsed >= self.max_seconds


def cosine_total_steps(num_batches_per_epoch: int, epochs: float, gradient_accumulation_steps: int) -> int:
    """Optimizer steps for ``epochs`` passes over a dataloader of ``num_batches_per_epoch``."""
    return max(1, math.ceil(num_batches_per_epoch * epochs / gradient_accumulation_steps))


def total_steps_for(cfg: dict[str, Any], batches_per_epoch: int) -> int:
    """``max_steps`` when set, else the optimizer steps of ``epochs`` passes."""
    if cfg["max_steps"]:
        return int(cfg["max_steps"])
    return cosine_total_steps(batches_per_epoch, cfg["epochs"], int(cfg["gradient_accumulation_steps"]))


# -------------------------------------------------------------------------------------- loop


def start_trackers(
    accelerator, model, cfg: dict[str, Any], name: str, what: str, batches_per_epoch: int, total_steps: int
) -> int:
    """Start the trackers (tensorboard, the config as hparams) and print what the run is; returns the
    model's parameter count. ``what`` describes the data (``"30 train / 8 eval CIFs"``)."""
    n_params = sum(p.numel() for p in accelerator.unwrap_model(model).parameters())
    accelerator.init_trackers(name, config=flat_hparams({**cfg, "n_params": n_params}))
    accelerator.print(
        f"{n_params / 1e6:.2f}M parameters, {what}, "
        f"{batches_per_epoch} batches per epoch per process, {total_steps} optimizer steps, "
        f"{accelerator.num_processes} process(es) on {accelerator.device}"
    )
    return n_params


@contextlib.contextmanager
def _sigterm_flag():
    """``{"set": bool}``, set by a SIGTERM while the block runs (the previous handler is restored
    after it; outside the main thread no handler can be installed and the flag stays False)."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["set"] = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


class TrainingLoop:
    """The optimisation loop of both scripts, with their own loss, evaluation and logging as callbacks.

    Each batch: the loss under ``accelerator.accumulate`` (backward, gradient clipping, optimizer
    and LR-scheduler step), then the batch is counted (tokens or crystals, all processes). Each
    optimizer step: ``after_step`` (an EMA update), ``log`` every ``log_every`` steps, ``evaluate``
    every ``eval_every`` steps, a checkpoint every ``save_every`` steps. The run stops at
    ``total_steps``, after ``stop_after_steps`` (``stop_reason`` "stopped") or after
    ``max_minutes`` (``"time"``), saving a checkpoint on the way out.

    ``timer`` starts when the loop is made; ``last_loss`` (mean over processes of the last step)
    and ``last_eval`` (what ``evaluate`` last returned, at step ``eval_step``) are kept for the
    summary.
    """

    def __init__(
        self,
        accelerator,
        cfg: dict[str, Any],
        model,
        optimizer,
        scheduler,
        train_loader,
        progress: TrainingProgress,
        total_steps: int,
        batches_per_epoch: int,
    ):
        self.accelerator = accelerator
        self.cfg = cfg
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.progress = progress
        self.total_steps = int(total_steps)
        self.batches_per_epoch = batches_per_epoch
        self.timer = StepTimer(cfg["max_minutes"])
        self.steps_at_start = progress.step
        self.last_loss = float("nan")
        self.last_eval = None
        self.eval_step = None  # the step last_eval was measured at
        self.stop_reason = "done"

    @property
    def epochs(self) -> float:
        """Epochs done, fractional."""
        return self.progress.epoch + self.progress.batch_in_epoch / self.batches_per_epoch

    @property
    def steps_per_s(self) -> float:
        """Optimizer steps per second in this process's run (a resumed run counts from its start)."""
        return (self.progress.step - self.steps_at_start) / max(self.timer.elapsed, 1e-9)

    def summary(self) -> dict[str, Any]:
        """The head of a run's summary: optimizer steps done and planned, epochs, the last loss."""
        return {
            "step": self.progress.step,
            "total_steps": self.total_steps,
            "epochs": self.epochs,
            "train_loss": self.last_loss,
        }

    @property
    def needs_final_eval(self) -> bool:
        """Whether the model as it is now was not evaluated (the final folder wants its eval)."""
        return self.last_eval is None or self.eval_step != self.progress.step

    def run(self, *args, **kwargs) -> str:
        """Train to the end (see ``_run``); a SIGTERM meanwhile makes the loop save a checkpoint
        at the end of the optimizer step under way and stop ("stopped"), so a killed job loses no
        step and ``--resume latest`` continues from it."""
        with _sigterm_flag() as self._sigterm:
            return self._run(*args, **kwargs)

    def _terminated(self) -> bool:
        flag = float(self._sigterm["set"])
        if self.accelerator.num_processes > 1:  # every process stops at the same step
            flag = self.accelerator.reduce(torch.tensor(flag, device=self.accelerator.device), "sum").item()
        return flag > 0

    def _run(self, loss, count, evaluate, log, after_step=None, stop_after_steps: int | None = None) -> str:
        """Train to the end; returns the stop reason ("done", "stopped" or "time").

        - ``loss(batch)``: a dict of scalar tensors; ``"loss"`` is backpropagated, every entry is
          averaged between logs.
        - ``count(batch)``: a tensor, what the batch holds (tokens, crystals); summed over processes
          into ``progress.tokens`` and the timer's rate.
        - ``evaluate()``: evaluates (and reports) the model; its value becomes ``last_eval``.
        - ``log(means)``: logs the averaged loss parts; returns the progress bar's postfix dict.
        - ``after_step()``: called after each optimizer step (before it is counted).
        - ``stop_after_steps``: save a checkpoint and stop ("stopped") at this step.
        """
        from tqdm.auto import tqdm

        acc, cfg, progress = self.accelerator, self.cfg, self.progress
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        bar = tqdm(
            total=self.total_steps, initial=progress.step, disable=not acc.is_local_main_process, desc="train"
        )
        sums: dict[str, float] = {}
        n = 0
        model.train()
        while progress.step < self.total_steps:
            for batch in epoch_batches(self.train_loader, progress.epoch, progress.batch_in_epoch):
                with acc.accumulate(model):
                    parts = loss(batch)
                    acc.backward(parts["loss"])
                    if acc.sync_gradients and cfg["max_grad_norm"]:
                        acc.clip_grad_norm_(model.parameters(), float(cfg["max_grad_norm"]))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                progress.batch_in_epoch += 1
                seen = int(acc.reduce(count(batch), reduction="sum").item())
                progress.tokens += seen
                self.timer.add(seen)
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                n += 1
                if not acc.sync_gradients:
                    continue
                if after_step is not None:
                    after_step()
                progress.step += 1
                self.last_loss = acc.reduce(parts["loss"].detach(), reduction="mean").item()
                bar.update(1)
                if progress.step % int(cfg["log_every"]) == 0 or progress.step == self.total_steps:
                    bar.set_postfix(**log({key: value / max(n, 1) for key, value in sums.items()}))
                    sums, n = {}, 0
                if progress.step % int(cfg["eval_every"]) == 0 or progress.step == self.total_steps:
                    self.last_eval, self.eval_step = evaluate(), progress.step
                stopping = stop_after_steps is not None and progress.step >= stop_after_steps
                if self._terminated():
                    acc.print(f"SIGTERM: saving a checkpoint at step {progress.step} and stopping")
                    stopping = True
                out_of_time = self.timer.out_of_time()
                if progress.step % int(cfg["save_every"]) == 0 or stopping or out_of_time:
                    save_checkpoint(acc)
                if stopping or out_of_time:
                    self.stop_reason = "stopped" if stopping else "time"
                    break
                if progress.step >= self.total_steps:
                    break
            else:  # the epoch ran out
                progress.epoch += 1
                progress.batch_in_epoch = 0
                continue
            break  # stopped, out of time, or done
        bar.close()
        return self.stop_reason


# ------------------------------------------------------------------------------------ finish


def earlier_stages(init_from: str | None) -> list[dict[str, Any]]:
    """The training record of the model a run starts from (``--init-from`` a folder or a shipped
    model's name), its own earlier stages first: the history a continued run keeps. Empty for a
    fresh run or a Hub repo id."""
    from hfmat.hub.provenance import portable_config, read_training_record, stages
    from hfmat.shipped import NAMES, shipped_model

    if init_from and Path(init_from).is_dir():
        record = read_training_record(init_from)
    elif init_from in NAMES:
        record = read_training_record(shipped_model(init_from))
    else:
        return []
    if record is None:
        return []
    return [{**stage, "config": portable_config(stage.get("config", {}))} for stage in stages(record)]


def write_training_summary(folder: Path, cfg: dict[str, Any], summary: dict[str, Any], **extra: Any) -> None:
    """``folder/training_summary.json``, which the model cards read and ``hfmat push`` publishes: the
    config (paths made portable: no absolute path of this machine), the summary, the date, what the
    data was (``dataset_kind``), the Hub repo id it started from (``base_model``, None if none), the
    records of the stages before (``previous``, for a run started from a folder), then ``extra``."""
    import time

    from hfmat.hub.provenance import base_model_of, dataset_kind, portable_config

    record = {
        "config": portable_config(cfg),
        "summary": summary,
        "date": time.strftime("%Y-%m-%d"),
        "dataset_kind": dataset_kind(cfg["dataset"]),
        "base_model": base_model_of(cfg.get("init_from")),
    }
    previous = earlier_stages(cfg.get("init_from"))
    if previous:
        record["previous"] = previous
    record.update(extra)
    (Path(folder) / "training_summary.json").write_text(json.dumps(record, indent=1) + "\n")


def final_dir_for(cfg: dict[str, Any]) -> Path:
    """Where the Hub-ready folder goes: ``final_dir``, else ``<output_dir>/final``."""
    return Path(cfg["final_dir"] or Path(cfg["output_dir"]) / "final")


def end_training(accelerator) -> None:
    """``accelerator.end_training()`` (trackers closed, process group destroyed), then, in a
    multi-process run, a moment without the GIL.

    torch's gloo backend joins its worker threads when the last reference to its process group goes
    (the DDP-wrapped model, when ``main`` returns) without releasing the GIL, while a worker that has
    just finished the last collective may still need the GIL to release that collective's tensors:
    a deadlock in about one two-process CPU run in fifteen. Sleeping lets the workers finish first.
    """
    accelerator.end_training()
    if accelerator.num_processes > 1:
        time.sleep(0.1)


def finish(accelerator, summary: dict[str, Any], write=None) -> dict[str, Any]:
    """End the run: ``write()`` on the main process once every process is here (the final folder;
    None for a run that stopped early and writes nothing), close the trackers, print the summary
    (when ``write`` is given). Returns ``summary``."""
    if write is None:
        end_training(accelerator)
        return summary
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write()
    end_training(accelerator)
    accelerator.print(json.dumps(summary, indent=1))
    return summary


def run_main(main, argv=None):
    """Run a script's ``main(argv)`` as the ``hfmat`` command does: bad input (``ValueError``, which
    :class:`ConfigError` and ``hfmat.hub``'s errors are, or ``FileNotFoundError``) ends the process
    with ``<script>: error: <message>`` on stderr and exit status 2 instead of a traceback."""
    try:
        return main(argv)
    except (ValueError, FileNotFoundError) as err:
        prog = Path(main.__globals__.get("__file__") or sys.argv[0]).name
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
