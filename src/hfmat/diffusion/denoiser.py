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

Conditions (optional, for classifier-free guidance): named properties declared in the registered
``conditions`` config, scalar (normalised with the training set's ``mean`` / ``std``, then a small
MLP) or categorical (``nn.Embedding`` over ``num_classes``). Each condition's embedding is added to
the time embedding; a condition absent for a sample (not given, or masked out) uses that condition's
learned null embedding. A denoiser without conditions has no such modules and takes no such path.

Data convention (shared with :mod:`hfmat.data.graph`): lattices have rows = lattice vectors,
Cartesian = frac @ lattice. The diffusion runs on a normalised lattice
``L / (lattice_scale * N^(1/3))`` (see :meth:`CrystalDenoiser.normalize_lattice`): ``lattice_scale``
and the atom-count distribution of the training set are registered config values, so a saved
pipeline carries them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
    # Defaults of None let BaseOutput rebuild it from a dict, as Accelerate's mixed-precision
    # wrapper does with a forward's output (bf16 training failed without them).
    lattice_noise: torch.Tensor
    coord_score: torch.Tensor | None = None
    type_logits: torch.Tensor | None = None


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


CONDITION_KINDS = ("scalar", "categorical", "text")


#: How a text condition's embedding is pooled from the text encoder's output: ``pooler`` (its
#: L2-normalised ``pooler_output``, the [CLS] state through a dense layer and tanh: what Crystal CLIP
#: aligns) or ``mean`` (the mean of the last hidden states over the prompt's tokens).
TEXT_POOLINGS = ("pooler", "mean")


def check_conditions(conditions) -> list[dict]:
    """The ``conditions`` config as a list of plain dicts, checked: each has a unique ``name``, a
    ``kind`` in :data:`CONDITION_KINDS`, ``mean`` and ``std > 0`` (scalar), ``num_classes >= 1``
    (categorical) or ``dim >= 1`` (text: a prompt's embedding of that width, from the pipeline's
    text encoder, and an optional ``pooling`` in :data:`TEXT_POOLINGS`: how the encoder's token
    states become that embedding, see :func:`hfmat.diffusion.text.embed_texts`). Raises ValueError
    naming the bad entry."""
    out, seen = [], set()
    for i, spec in enumerate(conditions or []):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise ValueError(f"conditions[{i}] must be a mapping with a non-empty 'name', got {spec!r}")
        name, kind = spec["name"], spec.get("kind")
        if name in seen:
            raise ValueError(f"conditions: {name!r} is declared twice")
        seen.add(name)
        if kind == "scalar":
            mean, std = spec.get("mean"), spec.get("std")
            if not isinstance(mean, (int, float)) or not isinstance(std, (int, float)) or not std > 0:
                raise ValueError(
                    f"conditions[{i}] ({name}): a scalar condition needs numbers 'mean' and 'std' > 0, "
                    f"got mean={mean!r}, std={std!r}"
                )
            out.append({"name": name, "kind": kind, "mean": float(mean), "std": float(std)})
        elif kind == "categorical":
            n = spec.get("num_classes")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(
                    f"conditions[{i}] ({name}): a categorical condition needs 'num_classes' >= 1"
                )
            out.append({"name": name, "kind": kind, "num_classes": n})
        elif kind == "text":
            dim = spec.get("dim")
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                raise ValueError(
                    f"conditions[{i}] ({name}): a text condition needs 'dim' >= 1 (the text embedding's width)"
                )
            if any(c["kind"] == "text" for c in out):
                raise ValueError(f"conditions[{i}] ({name}): a denoiser takes one text condition at most")
            pooling = spec.get("pooling", "pooler")
            if pooling not in TEXT_POOLINGS:
                raise ValueError(
                    f"conditions[{i}] ({name}): pooling must be one of {TEXT_POOLINGS}, got {pooling!r}"
                )
            # "pooler" is the default and is not written, so configs saved before the key stay as they were
            out.append(
                {
                    "name": name,
                    "kind": kind,
                    "dim": dim,
                    **({"pooling": pooling} if pooling != "pooler" else {}),
                }
            )
        else:
            raise ValueError(f"conditions[{i}] ({name}): kind must be one of {CONDITION_KINDS}, got {kind!r}")
    return out


def check_elements(elements) -> list[int] | None:
    """The atomic numbers of ``elements`` (element symbols, as the ``elements`` config records
    them), or None for None. Raises ValueError naming an entry that is not an element."""
    if elements is None:
        return None
    from pymatgen.core.periodic_table import Element

    if isinstance(elements, str) or not isinstance(elements, (list, tuple)):
        raise ValueError(f"elements must be a list of element symbols, got {elements!r}")
    numbers = []
    for i, symbol in enumerate(elements):
        if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
            raise ValueError(f"elements[{i}]: {symbol!r} is not an element symbol")
        numbers.append(Element(symbol).Z)
    if not numbers:
        raise ValueError("elements is an empty list (None allows every element)")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"elements lists an element twice: {list(elements)}")
    return numbers


class ScalarConditionEmbedding(nn.Module):
    """A normalised scalar ``(v - mean) / std`` through Linear(1, H), SiLU, Linear(H, H)."""

    def __init__(self, hidden_dim: int, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std
        self.mlp = nn.Sequential(nn.Linear(1, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        dtype = self.mlp[0].weight.dtype
        return self.mlp(((values.float() - self.mean) / self.std).to(dtype).unsqueeze(-1))


class CategoricalConditionEmbedding(nn.Module):
    def __init__(self, hidden_dim: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, hidden_dim)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.embedding(values.round().long().clamp(0, self.num_classes - 1))


class TextConditionEmbedding(nn.Module):
    """A prompt's embedding [B, dim] (the text encoder's, L2-normalised) through Linear(dim, H),
    SiLU, Linear(H, H)."""

    def __init__(self, hidden_dim: int, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.mlp(values.to(self.mlp[0].weight.dtype))


def _condition_embedding(spec: dict, hidden_dim: int) -> nn.Module:
    if spec["kind"] == "scalar":
        return ScalarConditionEmbedding(hidden_dim, spec["mean"], spec["std"])
    if spec["kind"] == "text":
        return TextConditionEmbedding(hidden_dim, spec["dim"])
    return CategoricalConditionEmbedding(hidden_dim, spec["num_classes"])


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
        conditions: ``None`` (an unconditional model) or a list of conditions, each
            ``{"name": ..., "kind": "scalar", "mean": ..., "std": ...}`` or
            ``{"name": ..., "kind": "categorical", "num_classes": ...}`` or
            ``{"name": ..., "kind": "text", "dim": ...}`` (see :func:`check_conditions`).
        elements: ``None`` (any element) or the element symbols of the training data: de novo
            sampling draws atom types among these only (:meth:`allowed_atom_types`).
        condition_every_layer: a conditioned model also adds a linear map of the condition
            embedding to every atom's state before each message-passing layer (MatterGen's
            per-layer adapters), not only at the input. The maps start at zero, so the option adds
            nothing until trained (:meth:`with_layer_conditions` upgrades a trained model).
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
        conditions: list[dict] | None = None,
        elements: list[str] | None = None,
        condition_every_layer: bool = False,
    ):
        super().__init__()
        specs = check_conditions(conditions)
        if condition_every_layer and not specs:
            raise ValueError("condition_every_layer needs conditions: an unconditional model has none to add")
        self.element_numbers = check_elements(elements)
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
        # only a conditioned model has these (an unconditional one keeps its state-dict keys)
        self.condition_specs = {spec["name"]: spec for spec in specs}
        if specs:
            self.condition_embeddings = nn.ModuleDict(
                {spec["name"]: _condition_embedding(spec, hidden_dim) for spec in specs}
            )
            self.condition_null = nn.ParameterDict(
                {spec["name"]: nn.Parameter(torch.zeros(hidden_dim)) for spec in specs}
            )
        if condition_every_layer:
            self.layer_conditions = nn.ModuleList(
                nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers)
            )
            for linear in self.layer_conditions:
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def allowed_atom_types(self) -> torch.Tensor | None:
        """BoolTensor[NUM_ATOM_TYPES], True at the atomic numbers of ``config.elements`` (what de novo
        sampling may place), or None when the config names no elements (any element)."""
        if self.element_numbers is None:
            return None
        allowed = torch.zeros(NUM_ATOM_TYPES, dtype=torch.bool)
        allowed[self.element_numbers] = True
        return allowed

    def record_elements(self, elements: list[str]) -> None:
        """Set ``config.elements`` (what de novo sampling may draw) on a built model."""
        self.element_numbers = check_elements(elements)
        self.register_to_config(elements=list(elements))

    @classmethod
    def for_generation(
        cls, base: CrystalDenoiser, elements: list[str], conditions: list[dict] | None = None
    ) -> tuple[CrystalDenoiser, list[str]]:
        """A de novo (``predict_atom_types``) denoiser started from a structure-prediction ``base``:
        every shared weight copied; the type head zero (uniform logits); the absorbing mask state's
        embedding the mean of ``elements``' embeddings (for one element: that element's, so the new
        model on an all-masked crystal of that element is ``base`` on it); condition embeddings
        zero-initialised as in :meth:`with_conditions`. Returns the model and the names of the new
        parameters."""
        if base.config.predict_atom_types:
            raise ValueError("for_generation needs a structure-prediction (predict_atom_types=False) base")
        if base.condition_specs:
            raise ValueError(f"the base denoiser already has conditions {list(base.condition_specs)}")
        numbers = check_elements(elements)
        if numbers is None:
            raise ValueError("for_generation needs the training data's elements (a list of symbols)")
        config = {k: v for k, v in base.config.items() if not k.startswith("_")}
        config.update(predict_atom_types=True, elements=list(elements), conditions=conditions or None)
        model = cls(**config).to(device=base.device, dtype=base.dtype)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        if unexpected or not all(k.startswith(("condition_", "type_head.")) for k in missing):
            raise RuntimeError(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for param in model.type_head.parameters():
                param.zero_()
            weight = model.type_embedding.weight
            weight[MASK_TYPE] = weight[numbers].mean(dim=0)
            if model.condition_specs:
                model._zero_conditions()
        new = [*missing, f"type_embedding.weight[{MASK_TYPE}] (mask state)"]
        return model.train(base.training), new

    def _zero_conditions(self) -> None:
        for name, embedding in self.condition_embeddings.items():
            last = (
                embedding.mlp[-1] if hasattr(embedding, "mlp") else embedding.embedding  # text: an mlp too
            )
            for param in last.parameters():
                param.zero_()
            self.condition_null[name].zero_()

    @classmethod
    def with_conditions(cls, base: CrystalDenoiser, conditions: list[dict]) -> CrystalDenoiser:
        """A conditioned copy of an unconditional ``base``: its weights, plus condition embeddings
        that are zero at the start (every embedding's last layer and every null embedding), so the
        new model's outputs equal ``base``'s for any condition until it is fine-tuned."""
        if base.condition_specs:
            raise ValueError(f"the base denoiser already has conditions {list(base.condition_specs)}")
        config = {k: v for k, v in base.config.items() if not k.startswith("_")}
        model = cls(**{**config, "conditions": conditions}).to(device=base.device, dtype=base.dtype)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        if unexpected or not all(k.startswith("condition_") for k in missing):
            raise RuntimeError(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            model._zero_conditions()
        return model.train(base.training)

    @classmethod
    def with_layer_conditions(cls, base: CrystalDenoiser) -> CrystalDenoiser:
        """A copy of the conditioned ``base`` with ``condition_every_layer``: its weights, plus the
        per-layer maps at zero, so its outputs equal ``base``'s until it is fine-tuned."""
        if not base.condition_specs:
            raise ValueError("the base denoiser has no conditions to add to every layer")
        if base.config.condition_every_layer:
            raise ValueError("the base denoiser already adds its conditions to every layer")
        config = {k: v for k, v in base.config.items() if not k.startswith("_")}
        model = cls(**{**config, "condition_every_layer": True}).to(device=base.device, dtype=base.dtype)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        if unexpected or not all(k.startswith("layer_conditions.") for k in missing):
            raise RuntimeError(f"base weights do not fit: missing {missing}, unexpected {unexpected}")
        return model.train(base.training)

    def condition_embedding(
        self,
        conditions: Mapping[str, torch.Tensor],
        condition_mask: Mapping[str, torch.Tensor] | None,
        num_crystals: int,
        device,
    ) -> torch.Tensor:
        """The sum over declared conditions of each one's embedding, or its null embedding where a
        sample lacks it (name not in ``conditions``, or ``condition_mask[name]`` False, or a
        non-finite value): [B, H]. A text condition's values are embeddings [B, dim] (or one [dim]
        for every sample); a row with a non-finite entry is absent."""
        unknown = sorted(set(conditions) - set(self.condition_specs))
        if condition_mask is not None:
            unknown += sorted(set(condition_mask) - set(self.condition_specs) - set(unknown))
        if unknown:
            raise ValueError(
                f"unknown condition(s) {unknown}; this denoiser's conditions: {list(self.condition_specs) or 'none'}"
            )
        total = None
        for name, embed in self.condition_embeddings.items():
            null = self.condition_null[name].expand(num_crystals, -1)
            if name in conditions:
                width = self.condition_specs[name].get("dim")  # a text condition: [dim] per crystal
                shape = (num_crystals,) if width is None else (num_crystals, width)
                values = torch.as_tensor(conditions[name], device=device).float()
                values = values.reshape(-1, *shape[1:]).expand(*shape)
                present = torch.isfinite(values) if width is None else torch.isfinite(values).all(-1)
                if condition_mask is not None and name in condition_mask:
                    present = (
                        present & torch.as_tensor(condition_mask[name], device=device).reshape(-1).bool()
                    )
                keep = present if width is None else present.unsqueeze(-1)
                values = torch.where(keep, values, torch.zeros_like(values))
                emb = torch.where(present.unsqueeze(-1), embed(values), null)
            else:
                emb = null
            total = emb if total is None else total + emb
        return total

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
        conditions: Mapping[str, torch.Tensor] | None = None,
        condition_mask: Mapping[str, torch.Tensor] | None = None,
    ) -> CrystalDenoiserOutput | tuple:
        """atom_types LongTensor[N] (0 = masked), frac_coords [N, 3], lattices [B, 3, 3] (normalised,
        rows = vectors), timesteps [B] (scheduler timesteps), num_atoms LongTensor[B].

        A conditioned model also takes ``conditions`` (name -> values [B] or one value, in the
        property's own units; categorical values are class indices) and ``condition_mask`` (name ->
        BoolTensor[B], False = absent); conditions not given use their null embeddings."""
        num_crystals = lattices.shape[0]
        batch = torch.repeat_interleave(torch.arange(num_crystals, device=lattices.device), num_atoms)
        timesteps = torch.as_tensor(timesteps, device=lattices.device).reshape(-1).expand(num_crystals)

        dtype = self.dtype  # inputs in any float dtype; features cast to the weights' (bf16 inference)
        lattices = lattices.to(dtype)
        temb = self.time_embedding(self.time_proj(timesteps).to(dtype))  # [B, H]
        if self.condition_specs:
            cemb = self.condition_embedding(conditions or {}, condition_mask, num_crystals, temb.device)
            temb = temb + cemb
        elif conditions or condition_mask:
            raise ValueError(f"this denoiser has no conditions; got {sorted(conditions or condition_mask)}")
        h = self.input_mlp(torch.cat([self.type_embedding(atom_types), temb[batch]], dim=-1))

        src, dst = fully_connected_edges(num_atoms)
        gram = lattices @ lattices.transpose(1, 2)  # [B, 3, 3], invariant to L -> L R^T
        gram_per_edge = gram.flatten(1)[batch[src]]
        fourier = self.fourier(frac_coords[dst] - frac_coords[src]).to(dtype)
        for i, layer in enumerate(self.layers):
            if self.config.condition_every_layer:
                h = h + self.layer_conditions[i](cemb)[batch]
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
