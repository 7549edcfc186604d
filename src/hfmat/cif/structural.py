"""Structural validity of a pymatgen Structure, as CDVAE / DiffCSP compute it: no two distinct
sites closer than 0.5 A (periodic images included) and a cell volume of at least 0.1 A^3."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

MIN_DISTANCE = 0.5
MIN_VOLUME = 0.1


def structural_validity(
    structure: Structure, min_distance: float = MIN_DISTANCE, min_volume: float = MIN_VOLUME
) -> tuple[bool, str]:
    """Return ``(ok, reason)``; ``reason`` says which condition failed and by how much."""
    volume = float(structure.volume)
    if not np.isfinite(volume) or volume < min_volume:
        return False, f"cell volume {volume:.4g} A^3 is below {min_volume} A^3"
    if len(structure) < 2:
        return True, f"single site, volume {volume:.2f} A^3"
    dm = structure.distance_matrix
    shortest = float(dm[np.triu_indices(len(structure), k=1)].min())
    if shortest < min_distance:
        return False, f"shortest interatomic distance {shortest:.3f} A is below {min_distance} A"
    return True, f"shortest interatomic distance {shortest:.3f} A, volume {volume:.2f} A^3"
