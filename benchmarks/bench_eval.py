"""Seconds per 1,000 CSP pairs (StructureMatcher RMS calls), serial vs the process pool.

Targets are the first N perov-5 test structures; each prediction is a copy whose sites are moved by
a random 0.05 A (seeded). Every timed run starts with an empty pair cache; a last run repeats the
parallel one on a warm cache to show what the cache saves.

    .venv/bin/python benchmarks/bench_eval.py --n 400 --workers 2 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from hfmat.evaluation import PairCache, csp_metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "perov_5" / "test.csv"


def load(n: int, path: Path) -> list[Structure]:
    with open(path, newline="") as f:
        rows = [r for _, r in zip(range(n), csv.DictReader(f))]
    return [Structure.from_str(r["cif"], fmt="cif") for r in rows]


def perturbed(s: Structure, d: float, rng: np.random.Generator) -> Structure:
    moves = rng.normal(size=(len(s), 3))
    moves *= d / np.linalg.norm(moves, axis=1, keepdims=True)
    p = s.copy()
    for i, v in enumerate(moves):
        p.translate_sites([i], v, frac_coords=False, to_unit_cell=True)
    return p


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="pairs (perov-5 test targets)")
    ap.add_argument("--workers", type=int, default=2, help="processes of the parallel run")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (serial and parallel alternate)")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()

    targets = load(args.n, args.data)
    rng = np.random.default_rng(0)
    preds = [[perturbed(s, 0.05, rng)] for s in targets]
    print(
        f"{len(targets)} pairs: perov-5 test structures vs copies moved 0.05 A per site; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    runs = {"serial": 1, f"parallel ({args.workers} workers)": args.workers}
    times: dict[str, list[float]] = {label: [] for label in runs}
    for rnd in range(args.repeat):  # serial and parallel alternate, so both see the same load
        for label, workers in runs.items():
            cache = PairCache()
            c0, t0 = _cpu(), time.perf_counter()
            m = csp_metrics(preds, targets, k=1, workers=workers, cache=cache, progress=False)
            dt, cpu = time.perf_counter() - t0, _cpu() - c0
            times[label].append(dt)
            print(
                f"round {rnd + 1} {label:>22}: {dt:7.2f} s, {1000 * dt / len(targets):7.2f} s per 1,000 pairs wall, "
                f"{1000 * cpu / len(targets):6.2f} CPU-s per 1,000 pairs "
                f"(match rate {m['match_rate']:.4f}, RMSE {m['rmse']:.4f}, matcher calls {cache.misses}, "
                f"load {os.getloadavg()[0]:.2f})"
            )
    results = {label: statistics.median(v) for label, v in times.items()}
    for label, dt in results.items():
        print(f"median {label:>22}: {1000 * dt / len(targets):7.2f} s per 1,000 pairs")
    t0 = time.perf_counter()
    csp_metrics(preds, targets, k=1, workers=args.workers, cache=cache, progress=False)
    dt = time.perf_counter() - t0
    print(
        f"{'warm cache (re-run)':>29}: {dt:7.2f} s total, {1000 * dt / len(targets):7.2f} s per 1,000 pairs "
        f"(cache hits {cache.hits})"
    )
    serial, parallel = results["serial"], results[f"parallel ({args.workers} workers)"]
    print(f"speed-up of the pool: {serial / parallel:.2f}x (load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
