"""The ``Accelerator`` of a run (checkpoint naming, seedable sampler, tensorboard) and its end."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError


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
