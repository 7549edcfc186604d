"""Training-loop pieces shared by hfmat's Accelerate scripts (train_cif_lm.py, train_diffusion.py).

Everything here is generic: config files, the Accelerator, AdamW with warm-up and cosine decay,
checkpoint/resume helpers and logging. The scripts keep their model- and data-specific parts.

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

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "ConfigError",
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


def find_latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The highest-numbered ``<output_dir>/checkpoints/checkpoint_<i>``, or None if there is none."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = [p for p in root.iterdir() if p.is_dir() and _CHECKPOINT_RE.match(p.name)]
    return max(found, key=checkpoint_index) if found else None


def save_checkpoint(accelerator) -> Path | None:
    """``accelerator.save_state()`` into the next ``checkpoint_<i>``; returns the folder it wrote."""
    accelerator.wait_for_everyone()
    path = accelerator.save_state()
    return Path(path) if path else None


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
    accelerator.load_state(str(path))
    accelerator.project_configuration.iteration = checkpoint_index(path) + 1
    return path


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
