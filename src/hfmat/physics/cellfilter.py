"""ASE's ``FrechetCellFilter`` with faster 3x3 matrix functions.

The filter (CHGNet's default for cell relaxation) takes two matrix logarithms and nine Fréchet
derivatives of the matrix exponential per step through scipy, which costs more per small cell
than the potential itself when many cells are evaluated in one batch. Here the logarithm is taken
through an eigendecomposition and checked by exponentiating it back (scipy's ``logm`` is used
when the check fails), and the nine Fréchet derivatives come from one stacked ``expm`` of block
matrices [[L, E], [0, L]], whose upper-right block is exactly the derivative in direction E.
The filter's degrees of freedom, forces and steps are ASE's own; only the arithmetic is faster.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm, logm


def fast_logm(matrix: np.ndarray) -> np.ndarray:
    """Principal logarithm of a real 3x3 matrix (the deformation gradient, near the identity)."""
    try:
        values, vectors = np.linalg.eig(matrix)
        if np.all(np.abs(values) > 0) and np.linalg.cond(vectors) < 1e6:
            log = (vectors @ np.diag(np.log(values.astype(complex))) @ np.linalg.inv(vectors)).real
            if np.allclose(expm(log), matrix, rtol=1e-10, atol=1e-12):
                return log
    except np.linalg.LinAlgError:
        pass
    return np.real(logm(matrix))


class _StackedFrechet:
    """``expm_frechet(L, E, compute_expm=False)`` for the nine unit directions E of one L at once."""

    def __init__(self):
        self._key: bytes | None = None
        self._blocks: np.ndarray | None = None

    def __call__(self, log: np.ndarray, direction: np.ndarray, compute_expm: bool = False) -> np.ndarray:
        if compute_expm or np.count_nonzero(direction) != 1 or direction.max() != 1.0:
            from scipy.linalg import expm_frechet

            return expm_frechet(log, direction, compute_expm=compute_expm)
        key = log.tobytes()
        if key != self._key:
            stacked = np.zeros((9, 6, 6))
            stacked[:, :3, :3] = log
            stacked[:, 3:, 3:] = log
            for k in range(9):
                stacked[k, k // 3, 3 + k % 3] = 1.0
            self._blocks, self._key = expm(stacked)[:, :3, 3:], key
        mu, nu = np.argwhere(direction)[0]
        return self._blocks[3 * mu + nu]


def frechet_cell_filter(atoms):
    """``ase.filters.FrechetCellFilter(atoms)``, with the fast matrix functions where this ASE
    version keeps them on the filter's helper (``_utility``); otherwise ASE's own filter."""
    from ase.filters import FrechetCellFilter

    cell_filter = FrechetCellFilter(atoms)
    utility = getattr(cell_filter, "_utility", None)
    if utility is not None and hasattr(utility, "logm") and hasattr(utility, "expm_frechet"):
        utility.logm = fast_logm
        utility.expm_frechet = _StackedFrechet()
    return cell_filter
