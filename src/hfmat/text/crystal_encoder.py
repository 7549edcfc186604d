"""The crystal tower of Crystal CLIP: hfmat's diffusion denoiser graph network, run on clean
crystals (timestep 0), its final atom states mean-pooled per crystal and projected."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from hfmat.diffusion.denoiser import CrystalDenoiser, scatter_mean


class CrystalEncoder(ModelMixin, ConfigMixin):
    """One embedding [B, embed_dim] per crystal.

    ``graph`` is a :class:`hfmat.diffusion.denoiser.CrystalDenoiser` (structure-prediction form,
    no atom-type head) called at timestep 0 on the crystal's normalised lattice; the atom states it
    hands to its output heads (the output of its ``final_norm``) are mean-pooled per crystal and
    projected to ``embed_dim``. Its two heads run but are unused (a few hundred parameters).
    Saved by ``save_pretrained`` as config.json + diffusion_pytorch_model.safetensors.
    """

    @register_to_config
    def __init__(
        self,
        hidden_dim: int = 64,
        num_layers: int = 3,
        num_frequencies: int = 8,
        time_embed_dim: int = 32,
        max_atoms: int = 24,
        lattice_scale: float = 1.0,
        embed_dim: int = 64,
    ):
        super().__init__()
        self.graph = CrystalDenoiser(
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_frequencies=num_frequencies,
            time_embed_dim=time_embed_dim,
            max_atoms=max_atoms,
            lattice_scale=lattice_scale,
            predict_atom_types=False,
        )
        self.projection = nn.Linear(hidden_dim, embed_dim)

    def forward(
        self,
        atom_types: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        num_atoms: torch.Tensor,
    ) -> torch.Tensor:
        """atom_types LongTensor[N] (atomic numbers), frac_coords [N, 3], lattices [B, 3, 3] in
        Angstrom (rows = vectors, as :class:`hfmat.data.GraphCollator` gives them), num_atoms [B]."""
        num_crystals = lattices.shape[0]
        if int(num_atoms.sum()) != atom_types.shape[0]:
            raise ValueError(
                f"num_atoms sums to {int(num_atoms.sum())} but {atom_types.shape[0]} atoms were given"
            )
        states = {}
        hook = self.graph.final_norm.register_forward_hook(lambda m, i, out: states.__setitem__("h", out))
        try:
            self.graph(
                atom_types,
                frac_coords,
                self.graph.normalize_lattice(lattices, num_atoms),
                torch.zeros(num_crystals, dtype=torch.long, device=lattices.device),
                num_atoms,
            )
        finally:
            hook.remove()
        batch = torch.repeat_interleave(torch.arange(num_crystals, device=lattices.device), num_atoms)
        return self.projection(scatter_mean(states["h"], batch, num_crystals))
