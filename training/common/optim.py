"""AdamW with warm-up and cosine decay, and how many optimizer steps a run takes."""

from __future__ import annotations

import math
from typing import Any

import torch

from .config import ConfigError


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


def cosine_total_steps(num_batches_per_epoch: int, epochs: float, gradient_accumulation_steps: int) -> int:
    """Optimizer steps for ``epochs`` passes over a dataloader of ``num_batches_per_epoch``."""
    return max(1, math.ceil(num_batches_per_epoch * epochs / gradient_accumulation_steps))


def total_steps_for(cfg: dict[str, Any], batches_per_epoch: int) -> int:
    """``max_steps`` when set, else the optimizer steps of ``epochs`` passes. A training set that
    makes no whole batch (the loaders drop the last, partial one) is a ConfigError: the loop would
    otherwise wait for a batch forever."""
    if batches_per_epoch < 1:
        from .config import ConfigError

        raise ConfigError(
            f"the training rows make no whole batch of per_device_batch_size={cfg['per_device_batch_size']} "
            "per process: lower per_device_batch_size (or eval_holdout), or train on more rows"
        )
    if cfg["max_steps"]:
        return int(cfg["max_steps"])
    return cosine_total_steps(batches_per_epoch, cfg["epochs"], int(cfg["gradient_accumulation_steps"]))
