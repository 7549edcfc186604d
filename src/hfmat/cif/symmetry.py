"""Space-group operations in spglib's default setting and orbit expansion of an asymmetric unit.

The writer refines every structure with spglib, which puts it in the default (first Hall number)
setting of its space-group type; the reader restores the operations of that same setting here.
"""

from __future__ import annotations

import os
from functools import cache, lru_cache

import numpy as np
import spglib

# spglib's C code prints to stderr on every failed standardization unless told not to
os.environ.setdefault("SPGLIB_WARNING", "OFF")

#: Two images of a site closer than this in every fractional coordinate (periodically) are one site.
MERGE_TOL = 2e-3


@cache
def _default_hall_numbers() -> dict[int, int]:
    first: dict[int, int] = {}
    for hall in range(1, 531):
        first.setdefault(spglib.get_spacegroup_type(hall).number, hall)
    return first


@lru_cache(maxsize=256)
def symmetry_operations(number: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotations ``[n, 3, 3]`` (int) and translations ``[n, 3]`` of space group ``number`` in
    spglib's default setting; the identity comes first."""
    if not 1 <= int(number) <= 230:
        raise ValueError(f"space-group number {number} is outside 1..230")
    ops = spglib.get_symmetry_from_database(_default_hall_numbers()[int(number)])
    rotations = np.asarray(ops["rotations"], dtype=np.int64)
    translations = np.asarray(ops["translations"], dtype=np.float64)
    rotations.setflags(write=False)
    translations.setflags(write=False)
    return rotations, translations


def group_order(number: int) -> int:
    return len(symmetry_operations(number)[0])


def orbit(frac: np.ndarray, number: int, tol: float = MERGE_TOL) -> np.ndarray:
    """The distinct images in [0, 1) of fractional point ``frac`` under space group ``number``;
    the first row is ``frac`` itself (wrapped)."""
    rotations, translations = symmetry_operations(number)
    images = np.einsum("nij,j->ni", rotations, np.asarray(frac, dtype=np.float64)) + translations
    images -= np.floor(images)
    kept: list[np.ndarray] = []
    for image in images:
        if not any(_same_point(image, k, tol) for k in kept):
            kept.append(image)
    return np.array(kept)


def _same_point(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    d = a - b
    d -= np.round(d)
    return bool(np.all(np.abs(d) < tol))


@cache
def _space_group(number: int):
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(int(number))


@lru_cache(maxsize=4096)
def is_subgroup(sub: int, group: int) -> bool:
    """True when space-group type ``sub`` is a subgroup of type ``group``: equal, P1, or reached
    down pymatgen's tables of maximal subgroups (``SpaceGroup.is_subgroup``; translationengleiche
    and klassengleiche, so a subgroup may need a larger cell). A structure whose symmetry is
    ``group`` therefore also has a symmetry group of type ``sub``."""
    for n in (sub, group):
        if not 1 <= int(n) <= 230:
            raise ValueError(f"space-group number {n} is outside 1..230")
    if sub == group or sub == 1:
        return True
    return bool(_space_group(sub).is_subgroup(_space_group(group)))
