"""The lattice scheduler: diffusers' ``DDPMScheduler`` as it is, configured for lattices."""

from __future__ import annotations

from diffusers import DDPMScheduler


def lattice_scheduler(
    num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2"
) -> DDPMScheduler:
    """DDPM on the normalised lattice matrix: epsilon prediction, cosine betas (as DiffCSP), no
    clipping (``clip_sample=True``, the default, would clamp lattice entries to [-1, 1]) and
    "trailing" timesteps, the spacing the torus and type schedulers use too."""
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        clip_sample=False,
        prediction_type="epsilon",
        timestep_spacing="trailing",
        variance_type="fixed_small",
    )
