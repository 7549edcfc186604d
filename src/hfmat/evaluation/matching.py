"""StructureMatcher calls, run over a process pool and cached per (structure, structure) pair.

The matcher is the expensive part of every CSP evaluation, and the same pair comes back often: the
k=1 and k=20 figures share their first sample, a model repeats itself, an evaluation is re-run. A
pair is keyed by a digest of both structures (lattice, species and fractional coordinates rounded to
1e-6) and of the matcher settings, so a cached answer is only reused for the same question.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from hfmat.evaluation.parallel import pool_map

#: The CSP matcher of CDVAE / DiffCSP / CrystaLLM.
CSP_MATCHER = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}


def structure_key(structure: Structure) -> str:
    """A digest of the lattice, species and fractional coordinates (rounded to 1e-6)."""
    h = hashlib.sha1()
    h.update(np.round(structure.lattice.matrix, 6).tobytes())
    h.update(" ".join(str(sp) for sp in structure.species).encode())
    h.update(np.round(np.mod(structure.frac_coords, 1.0), 6).tobytes())
    return h.hexdigest()


def _matcher_key(op: str, matcher: dict[str, Any]) -> str:
    return op + ":" + ",".join(f"{k}={matcher[k]}" for k in sorted(matcher))


class PairCache:
    """Answers of matcher calls, by (operation + settings, structure key, structure key)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, str], Any] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key):
        return self._store.get(key)

    def __contains__(self, key) -> bool:
        return key in self._store

    def put(self, key, value) -> None:
        self._store[key] = value

    def clear(self) -> None:
        self._store.clear()
        self.hits = self.misses = 0


#: The cache used when a caller passes none.
DEFAULT_CACHE = PairCache()


def _run_pair(job: tuple[str, dict[str, Any], Structure, Structure]) -> tuple[Any, str | None]:
    """One matcher call: ("rms", ...) -> normalised RMS distance or None; ("fit", ...) -> bool.
    Returns ``(answer, error)``; a matcher exception is an answer of no match plus its message."""
    op, settings, a, b = job
    matcher = StructureMatcher(**settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if op == "rms":
                rms = matcher.get_rms_dist(a, b)
                return (None if rms is None else float(rms[0])), None
            return bool(matcher.fit(a, b)), None
    except Exception as err:  # noqa: BLE001 - pymatgen raises many kinds; a pair that fails is no match
        return (None if op == "rms" else False), f"{type(err).__name__}: {err}"


def match_pairs(
    pairs: Sequence[tuple[Structure, Structure]],
    op: str = "rms",
    matcher: dict[str, Any] | None = None,
    workers: int | None = None,
    cache: PairCache | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> list[tuple[Any, str | None]]:
    """Run ``op`` ("rms" or "fit") on each ``(a, b)`` pair; returns ``(answer, error)`` per pair.

    Pairs already in ``cache`` (default: the module cache) and repeated pairs are computed once.
    """
    if op not in ("rms", "fit"):
        raise ValueError(f"op must be 'rms' or 'fit', got {op!r}")
    settings = dict(CSP_MATCHER if matcher is None else matcher)
    cache = DEFAULT_CACHE if cache is None else cache
    mkey = _matcher_key(op, settings)
    keys = [(mkey, structure_key(a), structure_key(b)) for a, b in pairs]
    todo: dict[tuple[str, str, str], int] = {}
    for i, key in enumerate(keys):
        if key in cache:
            cache.hits += 1
        elif key not in todo:
            todo[key] = i
    cache.misses += len(todo)
    jobs = [(op, settings, pairs[i][0], pairs[i][1]) for i in todo.values()]
    for key, answer in zip(todo, pool_map(_run_pair, jobs, workers=workers, desc=desc, progress=progress)):
        cache.put(key, answer)
    return [cache.get(key) for key in keys]
