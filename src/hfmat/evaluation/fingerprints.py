"""Structure and composition fingerprints for the COV metrics, as CDVAE defines them.

- structure: matminer's ``CrystalNNFingerprint.from_preset("ops")`` of every site, averaged over the
  sites (``SiteStatsFingerprint(..., stats=("mean",))``), 61 numbers;
- composition: matminer's ``ElementProperty.from_preset("magpie")`` without NaN imputation, 132
  numbers, to be scaled with ``hfmat.evaluation.magpie_scaler.scale_magpie``.

matminer is imported on first use (it takes seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from hfmat.evaluation.matching import structure_key
from hfmat.evaluation.parallel import pool_map
from hfmat.extras import require

N_STRUCTURE = 61
N_COMPOSITION = 132


@lru_cache(maxsize=1)
def _featurizers():
    featurizers = "matminer.featurizers"
    site_stats = require(f"{featurizers}.structure").SiteStatsFingerprint
    crystal_nn = require(f"{featurizers}.site").CrystalNNFingerprint
    site = site_stats(crystal_nn.from_preset("ops"), stats=("mean",))
    comp = require(f"{featurizers}.composition").ElementProperty.from_preset("magpie", impute_nan=False)
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


def default_cache_dir() -> Path:
    """``$HFMAT_CACHE/fingerprints``, else ``~/.cache/hfmat/fingerprints``."""
    root = os.environ.get("HFMAT_CACHE") or Path.home() / ".cache" / "hfmat"
    return Path(root) / "fingerprints"


def cached_fingerprints(
    structures: Sequence[Structure | None],
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    desc: str = "fingerprints",
    progress: bool = True,
) -> list[tuple[np.ndarray | None, np.ndarray | None, str | None]]:
    """:func:`fingerprints`, stored in ``cache_dir`` (default :func:`default_cache_dir`) under a digest
    of the structures and the matminer version, so a reference set is featurized once."""
    matminer = require("matminer")
    structures = list(structures)
    h = hashlib.sha1(f"matminer {matminer.__version__}".encode())
    for s in structures:
        h.update((structure_key(s) if isinstance(s, Structure) else "none").encode())
    path = Path(cache_dir or default_cache_dir()) / f"{h.hexdigest()}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                struct, comp, errors = z["struct"], z["comp"], json.loads(str(z["errors"]))
            return [
                (None if np.isnan(a).all() else a, None if np.isnan(b).all() else b, e)
                for a, b, e in zip(struct, comp, errors)
            ]
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache file is recomputed and overwritten
    fps = fingerprints(structures, workers=workers, desc=desc, progress=progress)
    struct = np.full((len(fps), N_STRUCTURE), np.nan)
    comp = np.full((len(fps), N_COMPOSITION), np.nan)
    for i, (a, b, _) in enumerate(fps):
        if a is not None:
            struct[i] = a
        if b is not None:
            comp[i] = b
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, struct=struct, comp=comp, errors=np.array(json.dumps([e for _, _, e in fps])))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs time
    return fps
