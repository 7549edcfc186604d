"""Energies of the app's structures with the physics extra (``pip install "hfmat[physics]"``):
CHGNet's single-point energy per atom, and the energy above the hull of CHGNet's own elemental
ground states (``hfmat.physics.reference_hull`` with no reference compounds, so it is the energy
of formation from the elements as CHGNet sees them, not a Materials Project E_hull; the elemental
references are relaxed once and cached on disk, which takes minutes the first time)."""

from __future__ import annotations

import importlib.util

POTENTIAL = "chgnet"
NOTE = (
    "energy: CHGNet single point (eV/atom); E_hull: above the hull of CHGNet's relaxed elemental "
    "ground states only (no reference compounds; not the Materials Project hull)"
)


def physics_available() -> bool:
    """Whether the physics extra's potential is installed (checked without importing it)."""
    return importlib.util.find_spec(POTENTIAL) is not None


def add_physics(results, potential=POTENTIAL, cache_dir=None) -> list[str]:
    """Fill ``energy`` and ``e_hull`` of each result that has a structure the potential can take;
    returns warnings for the page (a failure here never loses the samples)."""
    from hfmat.physics import energies, reference_hull

    todo = [r for r in results if r.structure is not None]
    if not todo:
        return []
    warnings = []
    points = energies([r.structure for r in todo], potential, progress=True)
    for result, point in zip(todo, points):
        result.energy = point.energy
        if point.error:
            warnings.append(f"{result.model} #{result.index}: no energy: {point.error}")
    elements = sorted({el.symbol for r in todo for el in r.structure.composition.elements})
    try:
        hull = reference_hull([], potential, extra_elements=elements, cache_dir=cache_dir, progress=True)
    except ValueError as err:
        return [*warnings, f"no E_hull: {err}"]
    for result in todo:
        if result.energy is not None:
            result.e_hull = hull.e_above_hull(result.structure.composition, result.energy)
    return [*warnings, NOTE]
