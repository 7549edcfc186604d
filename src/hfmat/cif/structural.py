"""Structural validity of a pymatgen Structure, as CDVAE / DiffCSP compute it: no two distinct
sites closer than 0.5 A (periodic images included) and a cell volume of at least 0.1 A^3."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

MIN_DISTANCE = 0.5
MIN_VOLUME = 0.1


def shortest_distance(structure: Structure) -> float | None:
    """The shortest distance between two distinct sites (periodic images included), in A; None for
    a single site."""
    if len(structure) < 2:
        return None
    return float(structure.distance_matrix[np.triu_indices(len(structure), k=1)].min())


def structural_validity(
    structure: Structure, min_distance: float = MIN_DISTANCE, min_volume: float = MIN_VOLUME
) -> tuple[bool, str]:
    """Return ``(ok, reason)``; ``reason`` says which condition failed and by how much."""
    volume = float(structure.volume)
    if not np.isfinite(volume) or volume < min_volume:
        return False, f"cell volume {volume:.4g} A^3 is below {min_volume} A^3"
    shortest = shortest_distance(structure)
    if shortest is None:
        return True, f"single site, volume {volume:.2f} A^3"
    if shortest < min_distance:
        return False, f"shortest interatomic distance {shortest:.3f} A is below {min_distance} A"
    return True, f"shortest interatomic distance {shortest:.3f} A, volume {volume:.2f} A^3"
