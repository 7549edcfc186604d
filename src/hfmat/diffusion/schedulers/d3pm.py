"""Discrete diffusion of atom types with an absorbing (mask) state (D3PM, Austin et al. 2021).

Forward: each token is independently replaced by the mask token with probability ``m(t)``,
``m(t) = (t + 1) / T`` ("linear") or ``1 - cos(pi/2 * (t + 1) / T)`` ("cosine"), t = 0..T-1; at the
last timestep everything is masked. Reverse, with the model predicting the clean token x_0:
going from t to an earlier s, an unmasked token stays, and a masked one is revealed with
probability ``(m(t) - m(s)) / m(t)`` as a draw from the model's x_0 distribution (the mask token
excluded); this is the exact absorbing-state posterior q(x_s | x_t, x_0) averaged over p(x_0 | x_t).

diffusers' ``AmusedScheduler`` also masks and unmasks tokens, but reveals the most confident
tokens in a fixed count per step (MaskGIT) on image-shaped token grids, and has no training-side
forward process for a variable number of tokens; the posterior above is what D3PM trains against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import ConfigMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput

from hfmat.diffusion.schedulers.spacing import InferenceTimestepsMixin


@dataclass
class D3PMSchedulerOutput(BaseOutput):
    """``prev_sample``: tokens after the step; ``pred_original_sample``: the sampled x_0 guess."""

    prev_sample: torch.LongTensor
    pred_original_sample: torch.LongTensor


def _uniform(shape, generator, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


class D3PMScheduler(InferenceTimestepsMixin, SchedulerMixin, ConfigMixin):
    """Absorbing-state discrete diffusion over a token vocabulary of ``vocab_size`` (mask included).

    Args:
        num_train_timesteps: T.
        vocab_size: number of token ids, the mask token included.
        mask_token_id: the absorbing state (0 for atom types: id Z is the element Z).
        mask_schedule: "linear" or "cosine" (probability that a token is masked at t).
        timestep_spacing: "trailing" (as the other crystal schedulers) or "linspace".
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        vocab_size: int = 119,
        mask_token_id: int = 0,
        mask_schedule: str = "linear",
        timestep_spacing: str = "trailing",
    ):
        if not 0 <= mask_token_id < vocab_size:
            raise ValueError(f"mask_token_id {mask_token_id} is outside the vocabulary 0..{vocab_size - 1}")
        u = np.arange(1, num_train_timesteps + 1) / num_train_timesteps
        if mask_schedule == "linear":
            m = u
        elif mask_schedule == "cosine":
            m = 1 - np.cos(math.pi / 2 * u)
        else:
            raise ValueError(f"mask_schedule must be 'linear' or 'cosine', got {mask_schedule!r}")
        self.mask_probs = torch.tensor(m, dtype=torch.float32)
        self._reset_timesteps()

    def sample_masked(self, num_tokens: int, device=None) -> torch.LongTensor:
        """x_T: every token masked."""
        return torch.full((num_tokens,), self.config.mask_token_id, dtype=torch.long, device=device)

    def add_noise(
        self, original_samples: torch.LongTensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.LongTensor:
        """Mask each token where ``noise`` (uniform [0, 1), one per token) < m(t); one timestep per token."""
        m = self.mask_probs.to(original_samples.device)[timesteps.long().to(original_samples.device)]
        masked = noise.to(original_samples.device) < m
        return torch.where(
            masked, torch.full_like(original_samples, self.config.mask_token_id), original_samples
        )

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int,
        sample: torch.LongTensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        return_dict: bool = True,
    ) -> D3PMSchedulerOutput | tuple:
        """model_output: logits [N, vocab_size] over x_0; sample: current tokens [N]."""
        t, prev = self._step_timesteps(timestep)
        m_t = float(self.mask_probs[t])
        m_s = float(self.mask_probs[prev]) if prev >= 0 else 0.0
        logits = model_output.float() / max(temperature, 1e-6)
        logits[..., self.config.mask_token_id] = -float("inf")
        probs = torch.softmax(logits, dim=-1)
        gen_device = generator.device if generator is not None else sample.device
        x0 = torch.multinomial(probs.to(gen_device), 1, generator=generator).squeeze(-1).to(sample.device)
        is_masked = sample == self.config.mask_token_id
        reveal = _uniform(sample.shape, generator, sample.device) < (m_t - m_s) / m_t
        prev_sample = torch.where(is_masked & reveal, x0, sample)
        if prev < 0:  # nothing stays masked at the end
            prev_sample = torch.where(is_masked, x0, sample)
        out = D3PMSchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)
        return out if return_dict else out.to_tuple()

    def __len__(self) -> int:
        return self.config.num_train_timesteps
