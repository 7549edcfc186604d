"""Crystal diffusion on diffusers: the DiffCSP recipe (joint diffusion of lattice, fractional
coordinates on the torus and atom types with a periodic E(3)-invariant graph denoiser).

Module paths are recorded in every saved pipeline's model_index.json: do not move these classes.
"""

from hfmat.diffusion.denoiser import CrystalDenoiser, CrystalDenoiserOutput
from hfmat.diffusion.element_head import TextElementHead
from hfmat.diffusion.inputs import PipelineInputError
from hfmat.diffusion.pipeline import CrystalDiffusionPipeline, CrystalPipelineOutput
from hfmat.diffusion.schedulers import (
    D3PMScheduler,
    D3PMSchedulerOutput,
    WrappedNormalScheduler,
    WrappedNormalSchedulerOutput,
    lattice_scheduler,
)

__all__ = [
    "CrystalDenoiser",
    "CrystalDenoiserOutput",
    "CrystalDiffusionPipeline",
    "CrystalPipelineOutput",
    "D3PMScheduler",
    "D3PMSchedulerOutput",
    "PipelineInputError",
    "TextElementHead",
    "WrappedNormalScheduler",
    "WrappedNormalSchedulerOutput",
    "lattice_scheduler",
]
