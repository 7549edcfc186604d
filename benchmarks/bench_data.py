"""Featurization speed of hfmat.data: rows/s serial vs ``num_proc``, and the cached reload time.

For each dataset (default perov_5 and carbon_24, one split), in a fresh datasets cache:

1. ``load_crystal_dataset`` (CSV -> normalised columns, every CIF parsed), then the same call again
   (answered from datasets' cache);
2. on the first ``--rows`` rows: ``featurize_lm`` (canonical CIF + token ids) and
   ``featurize_diffusion`` (Niggli graphs), serial and with ``num_proc``, each on its own copy of
   the rows so that both really compute;
3. both featurizations again on the serial copy: the cached reload.

    python benchmarks/bench_data.py --rows 1000 --num-proc 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import torch  # noqa: E402

from hfmat.data import featurize_diffusion, featurize_lm, load_crystal_dataset  # noqa: E402
from hfmat.tokenization import load_tokenizer  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the num_proc workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, *args, **kwargs):
    """``(result, (wall seconds, CPU seconds))`` of one call."""
    start, cpu = time.perf_counter(), _cpu()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - start, _cpu() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--datasets", nargs="+", default=["perov_5", "carbon_24"])
    parser.add_argument("--split", default="val")
    parser.add_argument("--rows", type=int, default=1000, help="rows featurized per run (0: the whole split)")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="hide datasets' progress bars")
    args = parser.parse_args()

    torch.set_num_threads(1)
    if args.quiet:
        datasets.disable_progress_bars()
    warnings.simplefilter("ignore")
    tokenizer = load_tokenizer()
    cache = tempfile.mkdtemp(prefix="hfmat-bench-data-")
    results = []
    try:
        for name in args.datasets:
            ds, t_load = timed(
                load_crystal_dataset, name, args.data_dir, splits=[args.split], cache_dir=cache
            )
            _, t_reload = timed(
                load_crystal_dataset, name, args.data_dir, splits=[args.split], cache_dir=cache
            )
            split = ds[args.split]
            n_all = len(split)
            results.append((name, "load + normalise", 1, n_all, t_load))
            results.append((name, "load + normalise (cached)", 1, n_all, t_reload))
            rows = split if args.rows <= 0 else split.select(range(min(args.rows, n_all)))
            copies = {}
            for num_proc in (1, args.num_proc):
                copy = rows.flatten_indices(new_fingerprint=f"bench-{name}-{num_proc}-{time.time_ns()}")
                copies[num_proc] = copy
                lm, t_lm = timed(featurize_lm, copy, tokenizer, num_proc=num_proc)
                graph, t_graph = timed(featurize_diffusion, copy, num_proc=num_proc)
                results.append((name, "featurize_lm", num_proc, len(copy), t_lm))
                results.append((name, "featurize_diffusion", num_proc, len(copy), t_graph))
            _, t_lm_cached = timed(featurize_lm, copies[1], tokenizer)
            _, t_graph_cached = timed(featurize_diffusion, copies[1])
            results.append((name, "featurize_lm (cached)", 1, len(copies[1]), t_lm_cached))
            results.append((name, "featurize_diffusion (cached)", 1, len(copies[1]), t_graph_cached))
            tokens = sum(lm["length"])
            results.append((name, f"  ({tokens / len(lm):.0f} tokens per CIF on average)", 0, 0, (0.0, 0.0)))
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nhfmat.data featurization ({os.cpu_count()} CPUs visible, load average {load}, split={args.split})"
    )
    print(
        f"{'dataset':<10} {'step':<30} {'num_proc':>8} {'rows':>6} {'wall s':>8} {'rows/s':>8} {'CPU s':>8}"
    )
    for name, step, num_proc, n, (wall, cpu) in results:
        if not n:
            print(f"{name:<10} {step}")
            continue
        print(f"{name:<10} {step:<30} {num_proc:>8} {n:>6} {wall:>8.2f} {n / wall:>8.1f} {cpu:>8.2f}")


if __name__ == "__main__":
    main()
