"""Crystals as variable-size graphs for the diffusion model, and their batch collator.

Convention (one crystal, as returned by :func:`structure_to_graph`)

- The cell is pymatgen's **Niggli-reduced** cell of the input structure
  (``Structure.get_reduced_structure("niggli")``; the cell is not made primitive first, as in
  CDVAE/DiffCSP's ``niggli=True, primitive=False``). The same crystal given in another setting of
  the same cell therefore gets the same lattice parameters up to Niggli's tie-breaking.
- The Cartesian orientation is then fixed from the six lattice parameters alone, with
  ``Lattice.from_parameters(a, b, c, alpha, beta, gamma)`` (pymatgen's convention: c along +z,
  a in the xz plane), so a rotated input gives the same matrix (as CDVAE/DiffCSP do).
- ``lattice``: 3x3 nested list in Angstrom, **rows are the lattice vectors** a, b, c
  (pymatgen's ``Lattice.matrix``), so Cartesian = frac @ lattice.
- ``frac_coords``: one row per atom, fractional coordinates in that cell, wrapped into [0, 1)
  (a coordinate that rounds to 1.0 in float64 becomes 0.0).
- ``atom_types``: atomic numbers Z (1..118), in the site order of the reduced structure.
- ``num_atoms``: number of sites.

Only ordered structures (one element per site, occupancy 1) are accepted; anything else raises
:class:`GraphError` naming the problem.

Batch (as returned by :class:`GraphCollator`), with N atoms over B crystals:

- ``atom_types`` LongTensor[N], ``frac_coords`` FloatTensor[N, 3] (crystals concatenated in order),
- ``lattices`` FloatTensor[B, 3, 3] (rows are lattice vectors), ``num_atoms`` LongTensor[B],
- ``batch`` LongTensor[N]: the index 0..B-1 of the crystal each atom belongs to,
- plus one FloatTensor[B] per name given in ``GraphCollator(properties=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

GRAPH_KEYS = ("atom_types", "frac_coords", "lattice", "num_atoms")


class GraphError(ValueError):
    """A structure cannot be turned into a graph, or a graph row is malformed."""


def wrap_unit(frac: np.ndarray) -> np.ndarray:
    """Wrap fractional coordinates into [0, 1) (float64, robust to -1e-17 % 1 == 1.0)."""
    out = np.asarray(frac, dtype=np.float64) % 1.0
    out[out >= 1.0] = 0.0
    return out


def structure_to_graph(structure: Structure) -> dict[str, Any]:
    """The Niggli-reduced graph of an ordered structure (see the module docstring)."""
    if len(structure) == 0:
        raise GraphError("structure has no sites")
    if not structure.is_ordered:
        raise GraphError(f"structure {structure.composition.formula!r} is disordered (partial occupancy)")
    try:
        reduced = structure.get_reduced_structure(reduction_algo="niggli")
    except Exception as err:  # pymatgen raises bare ValueError/RuntimeError for degenerate cells
        raise GraphError(f"Niggli reduction failed for {structure.composition.formula!r}: {err}") from err
    lattice = np.asarray(Lattice.from_parameters(*reduced.lattice.parameters).matrix, dtype=np.float64)
    if not np.isfinite(lattice).all() or abs(np.linalg.det(lattice)) < 1e-8:
        raise GraphError(f"degenerate lattice for {structure.composition.formula!r}")
    return {
        "atom_types": [int(site.specie.Z) for site in reduced],
        "frac_coords": wrap_unit(reduced.frac_coords).tolist(),
        "lattice": lattice.tolist(),
        "num_atoms": len(reduced),
    }


def graph_to_structure(
    atom_types: Sequence[int] | torch.Tensor | np.ndarray,
    frac_coords: Sequence[Sequence[float]] | torch.Tensor | np.ndarray,
    lattice: Sequence[Sequence[float]] | torch.Tensor | np.ndarray,
) -> Structure:
    """Inverse of :func:`structure_to_graph`: a pymatgen Structure from one crystal's arrays."""
    z = np.asarray(_to_numpy(atom_types), dtype=np.int64).reshape(-1)
    frac = np.asarray(_to_numpy(frac_coords), dtype=np.float64).reshape(-1, 3)
    mat = np.asarray(_to_numpy(lattice), dtype=np.float64).reshape(3, 3)
    if len(z) != len(frac):
        raise GraphError(f"{len(z)} atom types but {len(frac)} coordinate rows")
    if len(z) == 0:
        raise GraphError("graph has no atoms")
    if (z < 1).any() or (z > 118).any():
        raise GraphError(f"atomic numbers must lie in 1..118, got {sorted(set(z.tolist()))}")
    return Structure(Lattice(mat), [int(v) for v in z], wrap_unit(frac))


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class GraphCollator:
    """Batch crystals of different sizes: concatenated atoms, per-crystal lattices, a batch index.

    Call it on a list of :func:`structure_to_graph` dicts or of dataset rows holding the columns
    ``atom_types``, ``frac_coords``, ``lattice`` (``num_atoms`` optional, checked when present);
    rows may hold lists, numpy arrays or tensors (e.g. ``Dataset.with_format("torch")``). Any other
    columns are ignored except the scalar ``properties`` named here, stacked as FloatTensor[B]
    (a missing value, None, becomes NaN: a conditioned denoiser treats it as absent).
    Usable directly as ``torch.utils.data.DataLoader(collate_fn=GraphCollator())``.
    """

    def __init__(self, properties: Iterable[str] = ()):
        self.properties = tuple(properties)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise GraphError("cannot collate an empty list of crystals")
        types, coords, lattices, counts = [], [], [], []
        for i, row in enumerate(rows):
            missing = [k for k in ("atom_types", "frac_coords", "lattice") if k not in row]
            if missing:
                raise GraphError(f"row {i} lacks column(s) {missing}; has {sorted(row)}")
            z = torch.as_tensor(_to_numpy(row["atom_types"]), dtype=torch.long).reshape(-1)
            x = torch.as_tensor(_to_numpy(row["frac_coords"]), dtype=torch.float32).reshape(-1, 3)
            lat = torch.as_tensor(_to_numpy(row["lattice"]), dtype=torch.float32).reshape(3, 3)
            if len(z) != len(x) or len(z) == 0:
                raise GraphError(f"row {i}: {len(z)} atom types but {len(x)} coordinate rows")
            if "num_atoms" in row and int(row["num_atoms"]) != len(z):
                raise GraphError(f"row {i}: num_atoms={int(row['num_atoms'])} but {len(z)} atoms")
            types.append(z)
            coords.append(x)
            lattices.append(lat)
            counts.append(len(z))
        num_atoms = torch.tensor(counts, dtype=torch.long)
        batch = {
            "atom_types": torch.cat(types),
            "frac_coords": torch.cat(coords),
            "lattices": torch.stack(lattices),
            "num_atoms": num_atoms,
            "batch": torch.repeat_interleave(torch.arange(len(rows)), num_atoms),
        }
        for name in self.properties:
            try:
                values = [float("nan") if row[name] is None else float(row[name]) for row in rows]
            except KeyError:
                raise GraphError(f"property column {name!r} missing from a row") from None
            except (TypeError, ValueError) as err:
                raise GraphError(f"property column {name!r} is not a number in every row: {err}") from err
            batch[name] = torch.tensor(values, dtype=torch.float32)
        return batch
