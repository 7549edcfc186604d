"""Uniqueness and novelty: which generated structures repeat each other or a training structure.

Structures are bucketed by reduced formula and primitive-cell size (two structures with different
ones cannot match), then compared with pymatgen's ``StructureMatcher`` (default settings unless
given) inside each bucket only. Buckets are processed in parallel.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from hfmat.evaluation.parallel import pool_map


def _bucket_key(structure: Structure) -> tuple[str, int] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return structure.composition.reduced_formula, len(structure.get_primitive_structure())
        except Exception:  # noqa: BLE001 - fall back to the cell size
            return structure.composition.reduced_formula, len(structure)


def bucket_keys(structures: Sequence[Structure], workers=None, progress=True) -> list[tuple[str, int]]:
    return pool_map(_bucket_key, list(structures), workers=workers, desc="primitive cells", progress=progress)


def cached_bucket_keys(
    structures: Sequence[Structure], cache_dir=None, workers=None, progress=True
) -> list[tuple[str, int]]:
    """:func:`bucket_keys`, stored on disk beside the reference fingerprints (a training set is the
    same on every run)."""
    from hfmat.evaluation.fingerprints import default_cache_dir
    from hfmat.evaluation.matching import structure_key

    h = hashlib.sha1(b"bucket keys v1")
    for s in structures:
        h.update(structure_key(s).encode())
    path = Path(cache_dir or default_cache_dir()) / f"{h.hexdigest()}.keys.json"
    if path.exists():
        try:
            return [(str(f), int(n)) for f, n in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            pass  # unreadable: recomputed and overwritten
    keys = bucket_keys(structures, workers=workers, progress=progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(keys))
        os.replace(tmp, path)
    except OSError:
        pass
    return keys


def _group(job: tuple[dict[str, Any], list[int], list[Structure]]) -> list[int]:
    """For each structure of a bucket, the index (global) of the first earlier one it matches, or itself."""
    settings, idx, structs = job
    matcher = StructureMatcher(**settings)
    reps: list[int] = []
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pos, s in enumerate(structs):
            first = idx[pos]
            for r in reps:
                try:
                    if matcher.fit(structs[r], s):
                        first = idx[r]
                        break
                except Exception:  # noqa: BLE001 - a failing comparison is no match
                    continue
            if first == idx[pos]:
                reps.append(pos)
            out.append(first)
    return out


def _novel(job: tuple[dict[str, Any], list[Structure], list[Structure], list[int]]) -> list[int | None]:
    """For each generated structure of a bucket, the index of the first training structure it
    matches, or None."""
    settings, gen, train, train_idx = job
    matcher = StructureMatcher(**settings)
    out: list[int | None] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in gen:
            found = None
            for t, i in zip(train, train_idx):
                try:
                    if matcher.fit(s, t):
                        found = i
                        break
                except Exception:  # noqa: BLE001 - a failing comparison is no match
                    continue
            out.append(found)
    return out


def duplicates(
    structures: Sequence[Structure],
    keys: Sequence[tuple[str, int]],
    matcher: dict[str, Any] | None = None,
    workers=None,
    progress=True,
) -> list[int]:
    """For each structure, the index of the first structure in the list that matches it (itself when
    it is the first of its kind)."""
    buckets: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        buckets[key].append(i)
    jobs = [(dict(matcher or {}), idx, [structures[i] for i in idx]) for idx in buckets.values()]
    first = list(range(len(structures)))
    for (_, idx, _), out in zip(
        jobs, pool_map(_group, jobs, workers=workers, desc="uniqueness", progress=progress)
    ):
        for i, f in zip(idx, out):
            first[i] = f
    return first


def training_matches(
    structures: Sequence[Structure],
    keys: Sequence[tuple[str, int]],
    train: Sequence[Structure],
    train_keys: Sequence[tuple[str, int]],
    matcher: dict[str, Any] | None = None,
    workers=None,
    progress=True,
) -> list[int | None]:
    """For each structure, the index of a training structure it matches, or None (novel)."""
    train_by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, key in enumerate(train_keys):
        train_by_key[key].append(i)
    gen_by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        gen_by_key[key].append(i)
    jobs, where = [], []
    for key, idx in gen_by_key.items():
        tidx = train_by_key.get(key, [])
        jobs.append((dict(matcher or {}), [structures[i] for i in idx], [train[i] for i in tidx], tidx))
        where.append(idx)
    found: list[int | None] = [None] * len(structures)
    for idx, out in zip(where, pool_map(_novel, jobs, workers=workers, desc="novelty", progress=progress)):
        for i, f in zip(idx, out):
            found[i] = f
    return found
