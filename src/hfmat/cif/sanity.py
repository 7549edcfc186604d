"""The one structure sanity check every reader applies before any C extension (spglib, the
neighbour search of StructureMatcher / CrystalNN) sees a structure: such code crashes the process
(a segmentation fault, not an exception) on a NaN or degenerate cell.

``check_cell`` takes cell parameters, ``check_structure`` a pymatgen Structure; both raise
CifError naming what is wrong.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import DummySpecies, Structure

from hfmat.cif.errors import CifError

MAX_LENGTH = 1.0e4  #: longest cell edge read (A); the validity check is stricter
MIN_VOLUME = 1.0e-6  #: smallest cell volume read (A^3); structural validity is stricter
MAX_SITES = 1000  #: most sites in a cell
#: smallest volume / (a b c) read: angles whose sum is within rounding of 360 degrees make a flat cell
MIN_FLATNESS = 1.0e-4
#: thinnest cell read (A), along each axis (volume / area of the opposite face): in a thinner one
#: every atom sits this close to its own image, spglib cannot tell atoms apart at its usual
#: tolerance (0.1 A) and a neighbour search visits millions of images
MIN_HEIGHT = 0.1
#: an occupancy (or a site's total) up to 1 + this counts as 1
OCCUPANCY_SLACK = 1.0e-6


def check_cell(lengths, angles) -> None:
    """CifError unless the lengths are finite and in (0, MAX_LENGTH] A, the angles finite and in
    (0, 180) degrees, and together they make a cell (its metric tensor positive definite: volume /
    (a b c) above MIN_FLATNESS, volume above MIN_VOLUME) at least MIN_HEIGHT thick along each axis."""
    for k, v in zip("abc", lengths, strict=True):
        if not math.isfinite(v):
            raise CifError(f"_cell_length_{k}: {v} is not a finite number")
        if not 0 < v <= MAX_LENGTH:
            raise CifError(f"_cell_length_{k}: {v} is outside (0, {MAX_LENGTH:g}] A")
    for k, v in zip(("alpha", "beta", "gamma"), angles, strict=True):
        if not math.isfinite(v):
            raise CifError(f"_cell_angle_{k}: {v} is not a finite number")
        if not 0 < v < 180:
            raise CifError(f"_cell_angle_{k}: {v} is outside (0, 180) degrees")
    ca, cb, cg = (math.cos(math.radians(v)) for v in angles)
    flatness = math.sqrt(max(0.0, 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg))  # volume / abc
    volume = math.prod(lengths) * flatness
    if not (flatness > MIN_FLATNESS and volume > MIN_VOLUME):
        raise CifError(
            f"cell lengths {tuple(lengths)} and angles {tuple(angles)} make no lattice (volume {volume:.3g} A^3)"
        )
    for k, length, angle in zip("abc", lengths, angles, strict=True):
        height = volume * length / (math.prod(lengths) * math.sin(math.radians(angle)))  # V / |face|
        if height < MIN_HEIGHT:
            raise CifError(
                f"cell lengths {tuple(lengths)} and angles {tuple(angles)} make a cell {height:.3g} A "
                f"thick along {k}, thinner than {MIN_HEIGHT} A"
            )


def check_structure(structure: Structure) -> Structure:
    """``structure`` itself when its cell, volume and coordinates are usable; CifError otherwise."""
    if len(structure) == 0:
        raise CifError("the structure has no atom sites")
    if len(structure) > MAX_SITES:
        raise CifError(f"structure has {len(structure)} sites, more than {MAX_SITES}")
    check_cell(structure.lattice.abc, structure.lattice.angles)
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(matrix)):
        raise CifError(f"the lattice has non-finite entries: {matrix.tolist()}")
    volume = float(np.linalg.det(matrix))
    if not (math.isfinite(volume) and abs(volume) > MIN_VOLUME):
        raise CifError(f"cell lengths and angles make no lattice (volume {volume:.3g} A^3)")
    frac = np.asarray(structure.frac_coords, dtype=float)
    if not np.all(np.isfinite(frac)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(frac), axis=1))[0])
        raise CifError(f"site {bad} ({structure[bad].species_string}) has non-finite coordinates")
    if np.any(np.abs(frac) > 1e3):
        raise CifError("fractional coordinate out of range (|x| > 1000)")
    check_species(structure)
    return structure


def check_species(structure: Structure) -> None:
    """CifError for a site whose species is no element (pymatgen's DummySpecies, made from a
    symbol it did not know) or whose occupancies are not in (0, 1] or sum above 1."""
    for i, site in enumerate(structure):
        species = site.species
        if site.is_ordered and not isinstance(next(iter(species)), DummySpecies):
            continue
        total = 0.0
        for sp, amount in species.items():
            if isinstance(sp, DummySpecies):
                raise CifError(f"site {i} ({site.species_string}): {sp.symbol!r} is not an element")
            if not (math.isfinite(amount) and 0 < amount <= 1 + OCCUPANCY_SLACK):
                raise CifError(f"site {i} ({site.species_string}): occupancy {amount:g} is outside (0, 1]")
            total += amount
        if total > 1 + OCCUPANCY_SLACK:
            raise CifError(f"site {i} ({site.species_string}): occupancies sum to {total:g}, above 1")
