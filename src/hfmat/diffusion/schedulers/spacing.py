"""Inference timesteps shared by the crystal schedulers (the same rule as diffusers' DDPMScheduler)."""

from __future__ import annotations

import numpy as np
import torch


def inference_timesteps(
    config, num_inference_steps: int | None = None, timesteps: list[int] | None = None
) -> np.ndarray:
    """Decreasing integer timesteps in 0..T-1: explicit ``timesteps``, or ``num_inference_steps`` spaced
    by ``config.timestep_spacing`` ("trailing" as DDPMScheduler's, or "linspace")."""
    T = int(config.num_train_timesteps)
    if (num_inference_steps is None) == (timesteps is None):
        raise ValueError("give exactly one of num_inference_steps and timesteps")
    if timesteps is not None:
        steps = np.asarray([int(t) for t in timesteps], dtype=np.int64)
        if len(steps) == 0 or (np.diff(steps) >= 0).any() or steps[0] >= T or steps[-1] < 0:
            raise ValueError(
                f"timesteps must be strictly decreasing integers in 0..{T - 1}, got {list(timesteps)}"
            )
        return steps
    if isinstance(num_inference_steps, bool) or int(num_inference_steps) != num_inference_steps:
        raise ValueError(f"num_inference_steps must be an integer, got {num_inference_steps!r}")
    n = int(num_inference_steps)
    if not 1 <= n <= T:
        raise ValueError(f"num_inference_steps must lie in 1..{T} (num_train_timesteps), got {n}")
    if config.timestep_spacing == "trailing":
        return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1
    if config.timestep_spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64).copy()
    raise ValueError(f"timestep_spacing must be 'trailing' or 'linspace', got {config.timestep_spacing!r}")


class InferenceTimestepsMixin:
    """``set_timesteps`` / ``previous_timestep`` of the crystal schedulers, by :func:`inference_timesteps`.

    For a ``SchedulerMixin, ConfigMixin`` class whose config has ``num_train_timesteps`` and
    ``timestep_spacing``; call :meth:`_reset_timesteps` at the end of its ``__init__``.
    """

    def _reset_timesteps(self) -> None:
        """No inference schedule yet: every training timestep, T-1 down to 0."""
        self.num_inference_steps = None
        self.timesteps = torch.arange(self.config.num_train_timesteps - 1, -1, -1)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: list[int] | None = None,
    ) -> None:
        """The inference schedule: ``num_inference_steps`` spaced by ``timestep_spacing``, or explicit
        strictly decreasing ``timesteps`` in 0..T-1 (as ``DDPMScheduler.set_timesteps`` takes them)."""
        self.timesteps = torch.from_numpy(
            inference_timesteps(self.config, num_inference_steps, timesteps)
        ).to(device)
        self.num_inference_steps = len(self.timesteps)

    def previous_timestep(self, timestep: int) -> int:
        """The next (less noisy) timestep of the inference schedule; -1 after the last one."""
        steps = self.timesteps.tolist()
        i = steps.index(int(timestep))
        return steps[i + 1] if i + 1 < len(steps) else -1

    def _step_timesteps(self, timestep: int) -> tuple[int, int]:
        """``(t, previous_timestep(t))`` for ``step``; an error before ``set_timesteps``."""
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        t = int(timestep)
        return t, self.previous_timestep(t)
