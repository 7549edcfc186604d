"""The tiny random denoiser the diffusion tests share (seeded, eval mode): 16 wide, one layer, cells
of at most 8 atoms, every de novo cell ``num_atoms`` atoms."""

from __future__ import annotations


def tiny_denoiser(de_novo: bool = True, num_atoms: int = 4, **config):
    """A ``CrystalDenoiser`` made under ``torch.manual_seed(0)``; ``config`` adds registered config
    fields (``conditions``, ``elements``, ...)."""
    import torch

    from hfmat.diffusion import CrystalDenoiser

    torch.manual_seed(0)
    dist = [0.0] * 9
    dist[num_atoms] = 1.0
    return CrystalDenoiser(
        hidden_dim=16,
        num_layers=1,
        num_frequencies=2,
        time_embed_dim=8,
        max_atoms=8,
        lattice_scale=2.0,
        num_atoms_distribution=dist,
        predict_atom_types=de_novo,
        **config,
    ).eval()
