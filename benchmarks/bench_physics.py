"""Relaxation throughput (batched vs one by one) and CHGNet vs SevenNet-0 agreement on benchmark cells.

Measures, on the first cells of a CDVAE split (perov_5 or carbon_24 val):

1. one by one: CHGNet's own ``StructOptimizer().relax`` per structure (FIRE + FrechetCellFilter,
   fmax, steps; its own freshly loaded CHGNet), the loop a user would write;
2. ``hfmat.physics.relax`` with ``batch_size=1`` on the same cells (same optimiser: isolates the
   lean force call and the fast cell-filter arithmetic from batching);
3. ``hfmat.physics.relax`` with each ``--batch-size`` on ``--n`` cells (the first ones included);
4. single-point energies of ``--agreement-n`` cells (their DFT geometries) with CHGNet and with
   SevenNet-0, raw and with the MP2020 corrections CHGNet's training energies carry: MAE in eV/atom.
5. with ``--breakdown``: milliseconds per cell of each part of a step (graph build, batching, forward,
   backward, optimiser + cell filter) at batch 1, 8 and 32, to see where the 5x target stops.

Throughput is given per structure (structures/s) and per force evaluation (structure-steps/s, which
does not depend on how many steps the chosen cells need). The machine's load average is recorded:
on a shared machine the absolute figures move with it, the ratios much less.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_physics.py --n 64 --one-by-one-n 8 \\
        --out runs/bench_physics.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np


def load_cells(data_dir: Path, dataset: str, n: int):
    """The first ``n`` (material_id, Structure) of DATASET/val.csv, read with hfmat's CIF reader."""
    from hfmat.cif import cif_to_structure

    with (data_dir / dataset / "val.csv").open(newline="") as handle:
        rows = [row for _, row in zip(range(n), csv.DictReader(handle))]
    return [r["material_id"] for r in rows], [cif_to_structure(r["cif"]) for r in rows]


def one_by_one(structures, fmax: float, steps: int) -> dict:
    from chgnet.model import CHGNet, StructOptimizer

    optimizer = StructOptimizer(model=CHGNet.load(verbose=False, use_device="cpu"), use_device="cpu")
    optimizer.relax(structures[0], fmax=fmax, steps=1, verbose=False)  # warm-up
    start, evaluations, energies = time.perf_counter(), 0, []
    for s in structures:
        result = optimizer.relax(s, fmax=fmax, steps=steps, verbose=False)
        trajectory = result["trajectory"]
        evaluations += len(trajectory.energies) - 1  # its observer records the last state twice
        energies.append(float(trajectory.energies[-1]) / len(s))
    seconds = time.perf_counter() - start
    return _rates(len(structures), evaluations, seconds) | {"energy_final": energies}


def batched(structures, potential, fmax: float, steps: int, batch_size: int) -> dict:
    from hfmat.physics import relax

    start = time.perf_counter()
    results = relax(structures, potential, fmax=fmax, steps=steps, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    evaluations = sum(r.steps + 1 for r in results if r.ok)
    return _rates(len(structures), evaluations, seconds) | {
        "converged": sum(r.converged for r in results),
        "failed": sum(not r.ok for r in results),
        "mean_steps": float(np.mean([r.steps for r in results if r.ok])),
        "energy_drop_mean": float(np.mean([r.energy_initial - r.energy_final for r in results if r.ok])),
        "rmsd_mean": _mean([r.rmsd for r in results if r.ok]),
        "energy_final": [r.energy_final for r in results],
    }


def agreement(structures, chgnet, sevennet, raw_sevennet) -> dict:
    from hfmat.physics import energies

    a = [p.energy for p in energies(structures, chgnet, progress=False)]
    start = time.perf_counter()
    b = [p.energy for p in energies(structures, sevennet, progress=False)]
    seconds = time.perf_counter() - start
    c = [p.energy for p in energies(structures, raw_sevennet, progress=False)]
    pairs = [(x, y, z) for x, y, z in zip(a, b, c) if None not in (x, y, z)]
    x, y, z = (np.array(v) for v in zip(*pairs))
    return {
        "n": len(pairs),
        "mae_ev_per_atom": float(np.mean(np.abs(x - y))),
        "mae_ev_per_atom_no_mp2020": float(np.mean(np.abs(x - z))),
        "pearson_r": float(np.corrcoef(x, y)[0, 1]),
        "sevennet_seconds_per_structure": seconds / len(structures),
    }


def csp_before_after(predictions: str, reference: str, data_dir: Path, potential, batch_size: int) -> dict:
    """``hfmat.physics.csp.csp_relaxation`` of a run's predictions.jsonl against its reference split."""
    from hfmat.evaluation.io import split_source
    from hfmat.physics.csp import csp_inputs, csp_relaxation

    grouped, targets = csp_inputs(predictions, reference, data_dir / split_source(reference)[0])
    out = csp_relaxation(grouped, targets, potential, batch_size=batch_size, progress=False)
    return {key: value for key, value in out.items() if key != "energy_gap"}


def breakdown(cells, chgnet, batch_sizes=(1, 8, 32), repeats: int = 5) -> dict:
    """Where a relaxation step's time goes, in ms per cell: CHGNet's graph build (neighbour list,
    per cell), batching the graphs, the model's forward pass, the backward pass for forces and
    stress, the rest of hfmat's predict (composition model, copies), and the optimiser step with
    the cell filter (per cell, outside the potential). Each at the cells' DFT geometries, median of
    ``repeats`` calls."""
    import torch
    from chgnet.model.model import BatchedGraph

    from hfmat.physics.potentials import _structure
    from hfmat.physics.relaxation import _Job, to_atoms

    model = chgnet.model
    atoms = [to_atoms(s) for s in cells]
    out: dict = {}
    for size in batch_sizes:
        group = atoms[:size]
        parts: dict[str, list[float]] = {k: [] for k in ("graph", "batch", "forward", "backward", "predict")}
        for _ in range(repeats):
            t0 = time.perf_counter()
            graphs = [model.graph_converter(_structure(a), graph_id=str(i)) for i, a in enumerate(group)]
            t1 = time.perf_counter()
            batch = BatchedGraph.from_graphs(
                graphs,
                bond_basis_expansion=model.bond_basis_expansion,
                angle_basis_expansion=model.angle_basis_expansion,
                compute_stress=True,
            )
            t2 = time.perf_counter()
            with torch.enable_grad():
                result = model._compute(batch)
                t3 = time.perf_counter()
                torch.autograd.grad(
                    (result["e"] * result["atoms_per_graph"]).sum(), [*batch.atom_positions, *batch.strains]
                )
            t4 = time.perf_counter()
            chgnet.predict(group)
            t5 = time.perf_counter()
            for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                parts[key].append(1000 * seconds / len(group))
        row = {key: float(np.median(values)) for key, values in parts.items()}
        row["predict_other"] = row["predict"] - sum(row[k] for k in ("graph", "batch", "forward", "backward"))
        out[f"batch_{size}"] = row
    jobs = [_Job(i, a.copy(), cells[i].species, "FIRE", True) for i, a in enumerate(atoms[:32])]
    predictions = chgnet.predict([job.atoms for job in jobs])
    start = time.perf_counter()
    for job, prediction in zip(jobs, predictions):
        job.observe(prediction)
        job.optimizer.step()
    out["optimizer_step_ms"] = 1000 * (time.perf_counter() - start) / len(jobs)
    return out


def _rates(n: int, evaluations: int, seconds: float) -> dict:
    return {
        "structures": n,
        "seconds": seconds,
        "structures_per_s": n / seconds,
        "force_evaluations": evaluations,
        "evaluations_per_s": evaluations / seconds,
    }


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data", help="folder holding perov_5/ and carbon_24/")
    parser.add_argument("--dataset", default="perov_5", choices=["perov_5", "carbon_24"])
    parser.add_argument("--n", type=int, default=64, help="cells relaxed batched")
    parser.add_argument(
        "--one-by-one-n", type=int, default=8, help="cells relaxed one by one (the first ones)"
    )
    parser.add_argument(
        "--batch-size", type=int, nargs="+", default=[32], help="one or more batch sizes (e.g. 8 32)"
    )
    parser.add_argument("--fmax", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--agreement-n", type=int, default=100, help="cells for CHGNet vs SevenNet (0: skip)")
    parser.add_argument(
        "--csp-predictions", default=None, help="a CSP run's predictions.jsonl: match before/after relaxation"
    )
    parser.add_argument("--csp-reference", default="perov_5:test", help="its reference split")
    parser.add_argument("--skip-throughput", action="store_true", help="only the agreement / CSP parts")
    parser.add_argument(
        "--breakdown", action="store_true", help="ms per cell of each part of a relaxation step (5x target)"
    )
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from hfmat.physics.potentials import SevenNetPotential, load_potential

    load_before = os.getloadavg()
    n_cells = max(args.n, args.one_by_one_n, args.agreement_n)
    ids, cells = load_cells(Path(args.data_dir), args.dataset, n_cells)
    chgnet = load_potential("chgnet")
    from hfmat.physics import energies

    energies(cells[:2], chgnet, progress=False)  # warm-up
    figures: dict = {
        "dataset": f"{args.dataset} val (first cells)",
        "settings": {
            "fmax": args.fmax,
            "steps": args.steps,
            "batch_sizes": args.batch_size,
            "optimizer": "FIRE",
        },
        "potential": chgnet.description,
        "torch_threads": __import__("torch").get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if not args.skip_throughput:
        throughput(figures, cells, args)
    if args.breakdown:
        figures["breakdown_ms_per_cell"] = breakdown(cells, chgnet)
        print("breakdown, ms per cell:", json.dumps(figures["breakdown_ms_per_cell"], indent=1), flush=True)
    if args.agreement_n:
        figures["chgnet_vs_sevennet"] = agreement(
            cells[: args.agreement_n], chgnet, load_potential("sevennet"), SevenNetPotential(mp2020=False)
        )
        print("agreement, CHGNet vs SevenNet-0:", figures["chgnet_vs_sevennet"], flush=True)
    if args.csp_predictions:
        figures["csp_before_after_relaxation"] = csp_before_after(
            args.csp_predictions, args.csp_reference, Path(args.data_dir), chgnet, args.batch_size[0]
        )
        print("CSP before/after relaxation:", figures["csp_before_after_relaxation"], flush=True)
    figures["load_average_before_after"] = [load_before[0], os.getloadavg()[0]]
    print("load:", figures["load_average_before_after"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=1))


def throughput(figures: dict, cells, args) -> None:
    from hfmat.physics.potentials import load_potential

    chgnet = load_potential("chgnet")
    small = cells[: args.one_by_one_n]
    figures["one_by_one_structoptimizer"] = one_by_one(small, args.fmax, args.steps)
    print("one by one (CHGNet StructOptimizer):", _short(figures["one_by_one_structoptimizer"]), flush=True)
    figures["hfmat_batch_1"] = batched(small, chgnet, args.fmax, args.steps, 1)
    print("hfmat relax, batch 1:", _short(figures["hfmat_batch_1"]), flush=True)
    base = figures["one_by_one_structoptimizer"]
    for size in args.batch_size:
        key = "hfmat_batched" if size == args.batch_size[0] else f"hfmat_batch_{size}"
        figures[key] = batched(cells[: args.n], chgnet, args.fmax, args.steps, size)
        print(f"hfmat relax, batch {size}:", _short(figures[key]), flush=True)
        figures[f"speedup_vs_one_by_one_batch_{size}"] = {
            "per_force_evaluation": figures[key]["evaluations_per_s"] / base["evaluations_per_s"],
            "per_structure": figures[key]["structures_per_s"] / base["structures_per_s"],
        }
        print(f"speedup, batch {size}:", figures[f"speedup_vs_one_by_one_batch_{size}"], flush=True)
    same = figures["hfmat_batch_1"]["energy_final"]
    figures["one_by_one_vs_hfmat_final_energy_mae"] = float(
        np.mean(np.abs(np.subtract(base["energy_final"], same)))
    )


def _short(f: dict) -> str:
    return (
        f"{f['structures']} cells in {f['seconds']:.1f} s = {f['structures_per_s']:.3f} structures/s, "
        f"{f['evaluations_per_s']:.1f} force evaluations/s"
    )


if __name__ == "__main__":
    main()
