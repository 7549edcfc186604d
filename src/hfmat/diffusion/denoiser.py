"""The periodic E(3)-invariant graph denoiser (a CSPNet-style network in plain torch).

Every crystal in a batch is a fully connected graph over its atoms. Messages between atoms i and j
see the two atom states, the lattice Gram matrix ``L L^T`` (rotation invariant) and Fourier features
of the fractional-coordinate difference ``f_j - f_i`` (invariant to a common periodic translation).
Aggregation is a mean over neighbours with ``index_add_``, so the network is permutation
equivariant. The heads give

- ``lattice_noise`` [B, 3, 3]: an invariant 3x3 matrix ``M`` from the pooled atom states, multiplied
  on the lattice, ``M @ L`` (as in DiffCSP). With rows as lattice vectors a rotation ``L -> L R^T``
  leaves ``M`` unchanged and rotates the output the same way as the lattice.
- ``coord_score`` [N, 3]: the (normalised) score on the fractional coordinates, invariant.
- ``type_logits`` [N, V]: logits over the atom-type vocabulary (index 0 is the absorbing mask
  state; index Z is the element of atomic number Z).

Data convention (shared with :mod:`hfmat.data.graph`): lattices have rows = lattice vectors,
Cartesian = frac @ lattice. The diffusion runs on a normalised lattice
``L / (lattice_scale * N^(1/3))`` (see :meth:`CrystalDenoiser.normalize_lattice`): ``lattice_scale``
and the atom-count distribution of the training set are registered config values, so a saved
pipeline carries them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.utils import BaseOutput
from torch import nn

#: Atom-type vocabulary: 0 is the absorbing mask state, 1..118 are atomic numbers.
NUM_ATOM_TYPES = 119
MASK_TYPE = 0


@dataclass
class CrystalDenoiserOutput(BaseOutput):
    lattice_noise: torch.Tensor
    coord_score: torch.Tensor
    type_logits: torch.Tensor | None


def fully_connected_edges(num_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(src, dst) index pairs of every ordered atom pair (self pairs included) inside each crystal.

    Atoms are laid out crystal after crystal, as :class:`hfmat.data.GraphCollator` concatenates them.
    """
    num_atoms = num_atoms.long()
    offsets = torch.cumsum(num_atoms, 0) - num_atoms
    batch = torch.repeat_interleave(torch.arange(len(num_atoms), device=num_atoms.device), num_atoms)
    per_atom = num_atoms[batch]  # neighbours of each atom (its own crystal's size)
    src = torch.repeat_interleave(torch.arange(len(batch), device=num_atoms.device), per_atom)
    row_start = torch.cumsum(per_atom, 0) - per_atom
    k = torch.arange(len(src), device=num_atoms.device) - torch.repeat_interleave(row_start, per_atom)
    dst = offsets[batch[src]] + k
    return src, dst


def scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = values.new_zeros((size, *values.shape[1:])).index_add_(0, index, values)
    count = values.new_zeros(size).index_add_(0, index, torch.ones_like(index, dtype=values.dtype))
    return out / count.clamp(min=1).view(-1, *([1] * (values.dim() - 1)))


def normalize_lattice(lattices: torch.Tensor, num_atoms: torch.Tensor, lattice_scale: float) -> torch.Tensor:
    """``L / (lattice_scale * N^(1/3))``: the lattice the diffusion runs on (entries of order 1)."""
    factor = lattice_scale * num_atoms.to(lattices.dtype).pow(1.0 / 3.0)
    return lattices / factor.view(-1, 1, 1)


def denormalize_lattice(
    lattices: torch.Tensor, num_atoms: torch.Tensor, lattice_scale: float
) -> torch.Tensor:
    factor = lattice_scale * num_atoms.to(lattices.dtype).pow(1.0 / 3.0)
    return lattices * factor.view(-1, 1, 1)


class FourierFeatures(nn.Module):
    """sin/cos of 2*pi*k*d for k = 1..n on each of the 3 fractional components: periodic in d.

    Always computed in float32 (whatever the model's dtype: in bfloat16 an angle of 2*pi*16*d would
    be off by tenths of a radian); the caller casts the features to its weights' dtype."""

    def __init__(self, num_frequencies: int):
        super().__init__()
        self.num_frequencies = num_frequencies

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        k = torch.arange(1, self.num_frequencies + 1, device=d.device, dtype=torch.float32)
        angles = d.float().unsqueeze(-1) * (2 * math.pi * k)  # [E, 3, n]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


class CrystalLayer(nn.Module):
    """One message-passing layer: edge MLP on (h_i, h_j, Gram, Fourier(f_j - f_i)), mean, node MLP."""

    def __init__(self, hidden_dim: int, edge_feature_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim)
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden_dim + 9 + edge_feature_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
        )
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
        )

    def forward(self, h, gram_per_edge, fourier, src, dst):
        x = self.norm(h)
        messages = self.edge_mlp(torch.cat([x[src], x[dst], gram_per_edge, fourier], dim=-1))
        agg = scatter_mean(messages, src, h.shape[0])
        return h + self.node_mlp(torch.cat([x, agg], dim=-1))


class CrystalDenoiser(ModelMixin, ConfigMixin):
    """CSPNet-style denoiser for joint lattice / fractional-coordinate / atom-type diffusion.

    Args:
        hidden_dim: width of atom states and messages.
        num_layers: message-passing layers.
        num_frequencies: Fourier frequencies per fractional component on edges.
        time_embed_dim: sinusoidal timestep embedding width (diffusers' ``Timesteps``).
        max_atoms: the largest cell the pipeline accepts (checked before sampling).
        lattice_scale: the lattice is diffused as ``L / (lattice_scale * N^(1/3))``.
        num_atoms_distribution: probabilities of 0..max_atoms atoms in the training set (for de
            novo generation); ``None`` means uniform over 1..max_atoms.
        predict_atom_types: whether the model has the atom-type head (de novo generation); a
            structure-prediction (CSP) model has none and ``type_logits`` is None.
    """

    @register_to_config
    def __init__(
        self,
        hidden_dim: int = 256,
        num_layers: int = 4,
        num_frequencies: int = 32,
        time_embed_dim: int = 128,
        max_atoms: int = 20,
        lattice_scale: float = 1.0,
        num_atoms_distribution: list[float] | None = None,
        predict_atom_types: bool = True,
    ):
        super().__init__()
        if num_atoms_distribution is not None and len(num_atoms_distribution) != max_atoms + 1:
            raise ValueError(
                f"num_atoms_distribution needs max_atoms + 1 = {max_atoms + 1} entries "
                f"(index = number of atoms), got {len(num_atoms_distribution)}"
            )
        self.type_embedding = nn.Embedding(NUM_ATOM_TYPES, hidden_dim)
        self.time_proj = Timesteps(time_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_embed_dim, hidden_dim)
        self.input_mlp = nn.Linear(2 * hidden_dim, hidden_dim)
        self.fourier = FourierFeatures(num_frequencies)
        self.layers = nn.ModuleList(CrystalLayer(hidden_dim, 6 * num_frequencies) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(hidden_dim)
        self.coord_head = nn.Linear(hidden_dim, 3, bias=False)
        self.lattice_head = nn.Linear(hidden_dim, 9, bias=False)
        # CSP-only models have no type head (an unused head would also stall DDP's gradient sync)
        self.type_head = nn.Linear(hidden_dim, NUM_ATOM_TYPES) if predict_atom_types else None

    # -- lattice normalisation (applied by the pipeline and the training loss) --------------------
    def normalize_lattice(self, lattices: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        return normalize_lattice(lattices, num_atoms, self.config.lattice_scale)

    def denormalize_lattice(self, lattices: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        return denormalize_lattice(lattices, num_atoms, self.config.lattice_scale)

    def forward(
        self,
        atom_types: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        timesteps: torch.Tensor,
        num_atoms: torch.Tensor,
        return_dict: bool = True,
    ) -> CrystalDenoiserOutput | tuple:
        """atom_types LongTensor[N] (0 = masked), frac_coords [N, 3], lattices [B, 3, 3] (normalised,
        rows = vectors), timesteps [B] (scheduler timesteps), num_atoms LongTensor[B]."""
        num_crystals = lattices.shape[0]
        batch = torch.repeat_interleave(torch.arange(num_crystals, device=lattices.device), num_atoms)
        timesteps = torch.as_tensor(timesteps, device=lattices.device).reshape(-1).expand(num_crystals)

        dtype = self.dtype  # inputs in any float dtype; features cast to the weights' (bf16 inference)
        lattices = lattices.to(dtype)
        temb = self.time_embedding(self.time_proj(timesteps).to(dtype))  # [B, H]
        h = self.input_mlp(torch.cat([self.type_embedding(atom_types), temb[batch]], dim=-1))

        src, dst = fully_connected_edges(num_atoms)
        gram = lattices @ lattices.transpose(1, 2)  # [B, 3, 3], invariant to L -> L R^T
        gram_per_edge = gram.flatten(1)[batch[src]]
        fourier = self.fourier(frac_coords[dst] - frac_coords[src]).to(dtype)
        for layer in self.layers:
            h = layer(h, gram_per_edge, fourier, src, dst)
        h = self.final_norm(h)

        pooled = scatter_mean(h, batch, num_crystals)
        invariant = self.lattice_head(pooled).view(-1, 3, 3)
        lattice_noise = invariant @ lattices
        out = CrystalDenoiserOutput(
            lattice_noise=lattice_noise,
            coord_score=self.coord_head(h),
            type_logits=self.type_head(h) if self.type_head is not None else None,
        )
        return out if return_dict else out.to_tuple()
