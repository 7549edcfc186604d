"""Structure and composition fingerprints for the COV metrics, as CDVAE defines them.

- structure: matminer's ``CrystalNNFingerprint.from_preset("ops")`` of every site, averaged over the
  sites (``SiteStatsFingerprint(..., stats=("mean",))``), 61 numbers;
- composition: matminer's ``ElementProperty.from_preset("magpie")`` without NaN imputation, 132
  numbers, to be scaled with ``hfmat.evaluation.magpie_scaler.scale_magpie``.

matminer is imported on first use (it takes seconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Structure

from hfmat.evaluation.parallel import pool_map

N_STRUCTURE = 61
N_COMPOSITION = 132


@lru_cache(maxsize=1)
def _featurizers():
    from matminer.featurizers.composition import ElementProperty
    from matminer.featurizers.site import CrystalNNFingerprint
    from matminer.featurizers.structure import SiteStatsFingerprint

    site = SiteStatsFingerprint(CrystalNNFingerprint.from_preset("ops"), stats=("mean",))
    comp = ElementProperty.from_preset("magpie", impute_nan=False)
    return site, comp


def fingerprint(structure: Structure | None) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """``(structure_fp, composition_fp, error)``; a fingerprint that cannot be made is None."""
    if not isinstance(structure, Structure):
        return None, None, "no structure"
    site, comp = _featurizers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            comp_fp = np.asarray(comp.featurize(structure.composition.element_composition), dtype=float)
        except Exception as err:  # noqa: BLE001
            return None, None, f"composition fingerprint failed: {type(err).__name__}: {err}"
        try:
            struct_fp = np.asarray(site.featurize(structure), dtype=float)
        except Exception as err:  # noqa: BLE001 - CDVAE counts such a crystal as having no fingerprint
            return None, comp_fp, f"structure fingerprint failed: {type(err).__name__}: {err}"
    return struct_fp, comp_fp, None


def fingerprints(
    structures: Sequence[Structure | None],
    workers: int | None = None,
    desc: str = "fingerprints",
    progress: bool = True,
) -> list[tuple[np.ndarray | None, np.ndarray | None, str | None]]:
    """:func:`fingerprint` of each structure, over a process pool."""
    return pool_map(fingerprint, list(structures), workers=workers, desc=desc, progress=progress)
