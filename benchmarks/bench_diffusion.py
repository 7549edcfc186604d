"""Crystal diffusion benchmark: sampling speed and CSP quality at each step count, training speed.

    python benchmarks/bench_diffusion.py --pipeline checkpoints/crystal-diffusion-perov5 \
        --targets 100 --k 1 --steps 1000 200 100 50 --threads 1
    python benchmarks/bench_diffusion.py --pipeline checkpoints/crystal-diffusion-carbon24 \
        --dataset carbon_24 --targets 100 --k 20 --steps 50 --corrector-steps 0 --threads 1

For each step count it samples ``k`` structures for each of ``--targets`` test compositions of
``--dataset`` (perov_5, carbon_24, ...; a seeded random subset of test.csv), times the sampling (structures/s) and computes the match rate
and RMSE with hfmat.evaluation.csp_metrics (StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)),
for the first sample and for all k. ``--corrector-steps`` / ``--corrector-lr`` / ``--predictor``
override the sampler settings saved with the pipeline. It then times training steps (forward, loss,
backward, AdamW) of the pipeline's denoiser on batches of those crystals. ``--json`` writes every
figure and the command; ``--card-from`` turns such files into the pipeline's model card and its
``eval_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-perov5"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test")
    p.add_argument("--targets", type=int, default=50, help="number of test compositions")
    p.add_argument("--k", type=int, default=1, help="samples per composition")
    p.add_argument("--steps", type=int, nargs="+", default=[1000, 200, 100, 50])
    p.add_argument("--corrector-steps", type=int, default=None)
    p.add_argument("--corrector-lr", type=float, default=None)
    p.add_argument("--predictor", choices=["ancestral", "reverse_diffusion"], default=None)
    p.add_argument("--batch-size", type=int, default=500, help="crystals per denoiser batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-steps", type=int, default=20, help="training steps to time (0: skip)")
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="StructureMatcher processes")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument(
        "--card-from",
        nargs="+",
        default=None,
        metavar="JSON",
        help="do not sample: rewrite the pipeline's model card (README.md) with the rows of these --json results",
    )
    p.add_argument(
        "--card-note", default="", help="with --card-from: a paragraph added to the card's evaluation"
    )
    p.add_argument(
        "--card-limitations", default=None, help="with --card-from: the card's limitations paragraph"
    )
    p.add_argument(
        "--card-dataset",
        default=None,
        help="with --card-from: the dataset the card names (e.g. mp_20_subset for a subset of a "
        "benchmark's CSVs; default: the runs' --dataset)",
    )
    p.add_argument(
        "--timesteps-power",
        type=float,
        default=None,
        help="timesteps t_i = (T-1) (i/n)^p (p > 1: denser at low noise)",
    )
    return p.parse_args(argv)


def power_timesteps(n: int, p: float, T: int = 1000) -> list[int]:
    """n strictly decreasing timesteps (T-1) * (i/n)^p, i = n..1, spread apart where they collide."""
    import numpy as np

    t = np.round((T - 1) * (np.arange(n, 0, -1) / n) ** p).astype(int)
    for i in range(n - 2, -1, -1):
        t[i] = max(t[i], t[i + 1] + 1)
    return t.tolist()


def command_line(argv) -> str:
    argv = sys.argv[1:] if argv is None else list(argv)
    return "python benchmarks/bench_diffusion.py " + " ".join(shlex.quote(a) for a in argv)


def write_card(args) -> None:
    """Fill the pipeline's model card from measured rows (every row says how it was measured) and
    write the results with their commands to the pipeline's ``eval_metrics.json``."""
    from hfmat.data.catalog import BENCHMARKS
    from hfmat.diffusion.card import write_model_card

    rows, notes, runs = [], [], []
    for path in args.card_from:
        result = json.loads(Path(path).read_text())
        runs.append(result)
        for r in result["rows"]:
            corrector = f"{r['predictor']}, " + (
                f"{r['corrector_steps']} x {r['corrector_lr']:g}" if r["corrector_steps"] else "no corrector"
            )
            if r.get("timesteps_power"):
                corrector += f", t^{r['timesteps_power']:g} spacing"
            measured = [(1, r["match_rate_k1"], r["rmse_k1"])]
            if r["k"] > 1:
                measured.append((r["k"], r["match_rate"], r["rmse"]))
            for k, rate, rmse in measured:
                rows.append(
                    {
                        "steps": r["steps"],
                        "corrector": corrector,
                        "k": k,
                        "match_rate": rate,
                        "rmse": rmse,
                        "n": r["targets"],
                    }
                )
        a = result["args"]
        if result.get("command"):
            notes.append(f"`{result['command']}`")
            continue
        notes.append(
            f"`python benchmarks/bench_diffusion.py --targets {a['targets']} --k {a['k']} --steps "
            f"{' '.join(map(str, a['steps']))} --seed {a['seed']}"
            + (f" --corrector-steps {a['corrector_steps']}" if a["corrector_steps"] is not None else "")
            + (f" --corrector-lr {a['corrector_lr']:g}" if a["corrector_lr"] is not None else "")
            + (f" --predictor {a['predictor']}" if a["predictor"] else "")
            + (f" --timesteps-power {a['timesteps_power']:g}" if a.get("timesteps_power") else "")
            + "`"
        )
    dataset = args.card_dataset or runs[0]["args"].get("dataset", args.dataset)
    split = runs[0]["args"].get("split", "test")
    bench = BENCHMARKS.get(dataset)
    n_test = bench.standard_splits.get(split) if bench else None
    most = max(r["n"] for r in rows)
    if n_test and most >= n_test:
        scope = f"all {n_test:,} of them where the table says {n_test}, else a seeded random subset"
    else:
        scope = f"a seeded random subset, {most} at most" + (f", not all {n_test:,}" if n_test else "")
    text = (
        f"Crystal structure prediction on {bench.pretty_name if bench else dataset} **{split}** compositions "
        f"({scope} of {split}.csv; the number of compositions of each row is in the table), "
        "matched with `hfmat.evaluation.csp_metrics`. Measured with:\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + (f"\n\n{args.card_note}" if args.card_note else "")
    )
    evaluation = {"text": text, "rows": rows, "dataset": dataset, "split": split}
    if args.card_limitations:
        evaluation["limitations"] = args.card_limitations
    write_model_card(args.pipeline, evaluation=evaluation)
    metrics = Path(args.pipeline) / "eval_metrics.json"
    metrics.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    print(f"card written to {Path(args.pipeline) / 'README.md'}, results to {metrics}")


def load_targets(args):
    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[args.split])[args.split]
    ds = ds.shuffle(seed=args.seed).select(range(min(args.targets, len(ds))))
    from pymatgen.core import Structure

    return [Structure.from_str(text, fmt="cif") for text in ds["cif"]], list(ds["material_id"])


def sample_and_score(pipe, refs, args, steps: int) -> dict:
    from hfmat.evaluation import csp_metrics

    comps = [s.composition for s in refs]
    gen = torch.Generator().manual_seed(args.seed)
    schedule = (
        {
            "timesteps": power_timesteps(
                steps, args.timesteps_power, pipe.coord_scheduler.config.num_train_timesteps
            )
        }
        if args.timesteps_power
        else {"num_inference_steps": steps}
    )
    start = time.perf_counter()
    out = pipe(
        compositions=comps,
        num_samples=args.k,
        **schedule,
        generator=gen,
        corrector_steps=args.corrector_steps,
        corrector_step_lr=args.corrector_lr,
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - start
    cands = [out.structures[i * args.k : (i + 1) * args.k] for i in range(len(refs))]
    m = csp_metrics(cands, refs, k=args.k, workers=args.workers, progress=False)
    return {
        "steps": steps,
        "corrector_steps": pipe.coord_scheduler.config.corrector_steps
        if args.corrector_steps is None
        else args.corrector_steps,
        "corrector_lr": pipe.coord_scheduler.config.corrector_step_lr
        if args.corrector_lr is None
        else args.corrector_lr,
        "predictor": pipe.coord_scheduler.config.predictor,
        "timesteps_power": args.timesteps_power,
        "targets": len(refs),
        "k": args.k,
        "structures": len(out.structures),
        "sampling_s": seconds,
        "structures_per_s": len(out.structures) / seconds,
        "match_rate_k1": 100 * m["match_rate_k1"],
        "rmse_k1": m["rmse_k1"],
        "match_rate": 100 * m["match_rate"],
        "rmse": m["rmse"],
        # % of all samples that pass hfmat's structural validity check (interatomic distances)
        "structural_validity": 100 * m["structural_validity"],
        "structural_validity_k1": 100
        * sum(bool(t["candidates"] and t["candidates"][0]["valid"]) for t in m["per_target"])
        / len(refs),
    }


def train_speed(pipe, refs, args) -> dict:
    from hfmat.data import GraphCollator, structure_to_graph
    from hfmat.diffusion.loss import diffusion_loss

    model = pipe.denoiser
    model.train()
    graphs = [structure_to_graph(s) for s in refs]
    while len(graphs) < args.train_batch:
        graphs = graphs + graphs
    batch = GraphCollator()(graphs[: args.train_batch])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def step():
        loss = diffusion_loss(
            model,
            batch,
            pipe.lattice_scheduler,
            pipe.coord_scheduler,
            None,
            model.config.lattice_scale,
            generator=gen,
        )["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.train_steps):
        step()
    seconds = time.perf_counter() - start
    model.eval()
    return {"train_batch": args.train_batch, "train_steps_per_s": args.train_steps / seconds}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.card_from:
        write_card(args)
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    if args.predictor:
        pipe.coord_scheduler.register_to_config(predictor=args.predictor)
    refs, _ = load_targets(args)
    rows = []
    for steps in args.steps:
        row = sample_and_score(pipe, refs, args, steps)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    train = train_speed(pipe, refs, args) if args.train_steps else None

    print(
        f"\ncrystal diffusion: {args.pipeline}, {len(refs)} {args.dataset} {args.split} compositions x k={args.k}, "
        f"torch threads {torch.get_num_threads()}"
    )
    header = "| steps | predictor | corrector (steps, lr) | structures/s | match@1 % | RMSE@1 |"
    if args.k > 1:
        header += f" match@{args.k} % | RMSE@{args.k} |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        line = (
            f"| {r['steps']} | {r['predictor']} | {r['corrector_steps']}, {r['corrector_lr']:g} | "
            f"{r['structures_per_s']:.2f} | {r['match_rate_k1']:.1f} | {fmt(r['rmse_k1'])} |"
        )
        if args.k > 1:
            line += f" {r['match_rate']:.1f} | {fmt(r['rmse'])} |"
        print(line)
    if train:
        print(
            f"\ntraining: {train['train_steps_per_s']:.2f} steps/s at batch {train['train_batch']} (forward+backward+AdamW)"
        )
    from hfmat.hub.provenance import portable_config  # no folder of this machine in a card's record

    result = {
        "command": command_line(argv),
        "args": portable_config(vars(args)),
        "rows": rows,
        "train": train,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
