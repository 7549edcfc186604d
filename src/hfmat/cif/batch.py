"""Many CIFs at once on a process pool, in order, with a tqdm bar and one error per failed item."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from tqdm.auto import tqdm

from hfmat.cif.errors import CifError


@dataclass(frozen=True)
class ItemResult:
    """The result of one item: ``value`` when it worked, else ``error`` (the message)."""

    index: int
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _guarded(fn: Callable, item) -> tuple[Any, str | None]:
    try:
        return fn(item), None
    except CifError as err:
        return None, str(err)
    except Exception as err:  # one bad item must not sink the batch; its error is kept
        return None, f"{type(err).__name__}: {err}"


def _run_chunk(fn: Callable, items: list) -> list[tuple[Any, str | None]]:
    return [_guarded(fn, item) for item in items]


def map_items(
    fn: Callable,
    items: Iterable,
    num_workers: int | None = 2,
    chunk_size: int = 32,
    desc: str | None = None,
    progress: bool = True,
) -> list[ItemResult]:
    """``fn`` on every item, results in input order; ``num_workers`` <= 1 runs in this process.
    ``fn`` must be picklable (a module-level function or a functools.partial of one)."""
    items = list(items)
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    bar = tqdm(total=len(items), desc=desc, disable=not progress)
    results: list[tuple[Any, str | None]] = []
    workers = min(int(num_workers or os.cpu_count() or 1), max(1, len(chunks)))
    if workers <= 1:
        for chunk in chunks:
            results += _run_chunk(fn, chunk)
            bar.update(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_chunk, fn, chunk) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                try:
                    results += future.result()
                except Exception as err:  # a worker died (BrokenProcessPool): the chunk's items say so
                    results += [(None, f"worker failed: {type(err).__name__}: {err}")] * len(chunk)
                bar.update(len(chunk))
    bar.close()
    return [ItemResult(i, value, error) for i, (value, error) in enumerate(results)]


def _canonicalize_one(item, symprec: float, decimals: int, atom_props: bool) -> str:
    from pymatgen.core import Structure

    from hfmat.cif.reader import cif_to_structure
    from hfmat.cif.writer import structure_to_cif

    structure = item if isinstance(item, Structure) else cif_to_structure(item)
    return structure_to_cif(structure, symprec=symprec, decimals=decimals, atom_props=atom_props)


def canonicalize_many(
    items: Sequence,
    num_workers: int | None = 2,
    symprec: float = 0.1,
    decimals: int = 4,
    atom_props: bool = False,
    chunk_size: int = 32,
    progress: bool = True,
) -> list[ItemResult]:
    """Canonical text of every CIF text or Structure in ``items``."""
    fn = partial(_canonicalize_one, symprec=symprec, decimals=decimals, atom_props=atom_props)
    return map_items(fn, items, num_workers, chunk_size, "canonicalize", progress)


def parse_many(
    texts: Sequence[str], num_workers: int | None = 2, chunk_size: int = 32, progress: bool = True
) -> list[ItemResult]:
    """``cif_to_structure`` of every text."""
    from hfmat.cif.reader import cif_to_structure

    return map_items(cif_to_structure, texts, num_workers, chunk_size, "parse", progress)


def check_validity_many(
    texts: Sequence[str],
    num_workers: int | None = 2,
    chunk_size: int = 16,
    progress: bool = True,
    mode: str = "subgroup",
) -> list[ItemResult]:
    """``check_validity(text, mode)`` of every text (the value is the ValidityReport)."""
    from hfmat.cif.validity import _check_mode, check_validity

    fn = partial(check_validity, mode=_check_mode(mode))
    return map_items(fn, texts, num_workers, chunk_size, "validity", progress)


def check_canonical_many(
    items: Sequence, num_workers: int | None = 2, progress: bool = True
) -> list[tuple[bool, Any]]:
    """Each CIF text or Structure written as hfmat's canonical CIF and checked in strict mode (how
    the datasets' own structures are judged against the rules generated CIFs must pass):
    ``(canonicalized, ValidityReport)``, the report None where the item did not canonicalize or its
    check failed to run."""
    canonical = canonicalize_many(items, num_workers=num_workers, progress=progress)
    done = [i for i, r in enumerate(canonical) if r.ok]
    reports = check_validity_many(
        [canonical[i].value for i in done], num_workers=num_workers, progress=progress, mode="strict"
    )
    out: list[tuple[bool, Any]] = [(False, None)] * len(items)
    for i, result in zip(done, reports):
        out[i] = (True, result.value if result.ok else None)
    return out
