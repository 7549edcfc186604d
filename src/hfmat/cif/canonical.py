"""The one choice of origin (and hand) that makes the written text canonical.

A structure refined by spglib is in its group's standard setting, but that still leaves a choice:
any origin shift (and the inversion, where it is not an enantiomorph) that maps the group's
operations onto themselves gives an equally standard description, and polar groups can slide
freely along their polar axes. The writer tries every such move (the translations on a 1/24 grid
that normalize the group, times +-1, times a shift that puts some site at 0 along each free axis)
and keeps the description whose sorted atom-site rows are smallest.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np

from hfmat.cif.symmetry import symmetry_operations

GRID = 24  #: translations of the space-group tables are multiples of 1/24
_STEPS = (0, 3, 4, 6, 8, 9, 12, 15, 16, 18, 20, 21)  #: k/8, k/3, k/6 in 24ths


@lru_cache(maxsize=256)
def free_axes(number: int) -> tuple[bool, bool, bool]:
    """Axes along which every operation of the group leaves a shift unchanged (polar axes)."""
    rotations, _ = symmetry_operations(number)
    moved = np.abs(np.eye(3, dtype=np.int64)[None] - rotations).sum(axis=(0, 1))
    return tuple(bool(m == 0) for m in moved)


@lru_cache(maxsize=256)
def normalizer_moves(number: int) -> tuple[tuple[int, tuple[float, float, float]], ...]:
    """(sign, translation) pairs x -> sign * x + t that map the operations of group ``number``
    onto themselves; t is on the 1/24 grid and 0 along free axes. The inversion (sign -1) is
    offered only for groups with an improper operation (otherwise it gives the enantiomorph)."""
    rotations, translations = symmetry_operations(number)
    tau = np.rint(translations * GRID).astype(np.int64) % GRID
    rot_ids: dict[bytes, int] = {}
    rid = np.array([rot_ids.setdefault(r.tobytes(), len(rot_ids)) for r in rotations])
    weights = np.array([GRID * GRID, GRID, 1])
    codes = set((rid * GRID**3 + tau @ weights).tolist())
    free = free_axes(number)
    axes = [(0,) if f else _STEPS for f in free]
    shifts = np.array(list(product(*axes)), dtype=np.int64)  # [m, 3]
    i_minus_r = np.eye(3, dtype=np.int64)[None] - rotations  # [n, 3, 3]
    signs = [1, -1] if np.any(np.linalg.det(rotations) < 0) else [1]
    moves = []
    for sign in signs:
        new_tau = (sign * tau[:, None, :] + np.einsum("nij,mj->nmi", i_minus_r, shifts)) % GRID
        new_codes = rid[:, None] * GRID**3 + new_tau @ weights  # [n, m]
        ok = np.isin(new_codes, list(codes)).all(axis=0)
        moves += [(sign, tuple((shifts[k] / GRID).tolist())) for k in np.flatnonzero(ok)]
    return tuple(moves)


def _fixed(values: np.ndarray, d: int) -> np.ndarray:
    """Fractional coordinates as integers in units of 10^-d, rounded and wrapped into [0, 10^d)."""
    scale = 10**d
    return np.rint(np.mod(values, 1.0) * scale).astype(np.int64) % scale


def canonical_rows(
    number: int, orbits: list[tuple[int, str, np.ndarray]], d: int
) -> list[tuple[str, int, tuple[str, str, str]]]:
    """Rows (element, multiplicity, formatted x y z) of the canonical description.

    ``orbits`` holds (element rank in formula order, element, fractional coordinates [m, 3] of
    every site of the orbit)."""
    free = np.array(free_axes(number))
    all_coords = np.concatenate([c for _, _, c in orbits])
    best = None
    for sign, t in normalizer_moves(number):
        t = np.array(t)
        anchors = (sign * all_coords)[:, free] if free.any() else np.zeros((1, 0))
        for anchor in np.unique(np.round(anchors % 1.0, 8), axis=0):
            shift = t.copy()
            shift[free] = -anchor
            rows = []
            for rank, symbol, coords in orbits:
                fixed = _fixed(sign * coords + shift, d)
                rep = tuple(int(v) for v in fixed[np.lexsort(fixed.T[::-1])[0]])
                rows.append((rank, len(coords), rep, symbol))
            rows.sort()
            key = [r[:3] for r in rows]
            if best is None or key < best[0]:
                best = (key, rows)
    scale = 10**d
    return [(symbol, mult, tuple(f"{v / scale:.{d}f}" for v in rep)) for _, mult, rep, symbol in best[1]]
