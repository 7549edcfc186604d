"""A process pool with a progress bar, for the per-item work of the metrics (matcher calls,
fingerprints). Small jobs run in this process: starting workers costs more than they save."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tqdm.auto import tqdm

#: Below this many items the work runs serially.
MIN_PARALLEL_ITEMS = 8


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pool_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    desc: str | None = None,
    progress: bool = True,
    chunksize: int | None = None,
) -> list[Any]:
    """``[fn(x) for x in items]`` in order, over ``workers`` processes (default: all cores).

    ``fn`` must be a module-level function and must not raise for a bad item: it returns a value that
    says what went wrong, so one bad structure cannot stop a whole evaluation.
    """
    items = list(items)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    bar = dict(total=len(items), desc=desc, disable=not progress or not items, leave=False)
    if workers == 1 or len(items) < MIN_PARALLEL_ITEMS:
        return [fn(x) for x in tqdm(items, **bar)]
    # The first item runs here, before the workers fork, so that what it imports or builds lazily
    # (matminer featurizers, symmetry tables) is inherited instead of redone in every worker.
    with tqdm(**bar) as pbar:
        results = [fn(items[0])]
        pbar.update(1)
        rest = items[1:]
        if chunksize is None:
            chunksize = max(1, min(32, len(rest) // (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for value in pool.map(fn, rest, chunksize=chunksize):
                results.append(value)
                pbar.update(1)
    return results
