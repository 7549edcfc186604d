"""Crystal schedulers, one per file. The lattice uses diffusers' own ``DDPMScheduler``
(``clip_sample=False``, see :func:`hfmat.diffusion.schedulers.lattice.lattice_scheduler`)."""

from hfmat.diffusion.schedulers.d3pm import D3PMScheduler, D3PMSchedulerOutput
from hfmat.diffusion.schedulers.lattice import lattice_scheduler
from hfmat.diffusion.schedulers.wrapped_normal import WrappedNormalScheduler, WrappedNormalSchedulerOutput

__all__ = [
    "D3PMScheduler",
    "D3PMSchedulerOutput",
    "WrappedNormalScheduler",
    "WrappedNormalSchedulerOutput",
    "lattice_scheduler",
]
