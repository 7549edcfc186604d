"""How much a property-conditioned denoiser uses its condition: the denoising loss on a split with the
true condition, with the condition absent (the null embedding) and with the values shuffled between
crystals, the same noise draws in all three.

    OMP_NUM_THREADS=1 python benchmarks/condition_information.py \
        --pipeline checkpoints/crystal-diffusion-carbon24-gen-conditioned --dataset carbon_24 --split test

If the loss with the true value is no lower than with the value absent or shuffled, the denoiser has
not learnt what the condition says about a structure, and classifier-free guidance (the difference
of the two predictions) has nothing to steer with. Prints the three losses and their parts (lattice,
coordinates, atom types), averaged over ``--repeats`` noise draws of every crystal, and the paired
differences with their standard errors. Nothing here is a test: it is a measurement behind
docs/guidance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
PARTS = ("loss", "lattice", "coord", "type")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", required=True, help="a conditioned pipeline folder")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test")
    p.add_argument("--max-crystals", type=int, default=None, help="the first N crystals of the split")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=4, help="noise draws per crystal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the figures as JSON")
    return p.parse_args(argv)


def batch_losses(pipe, batch, conditions, mode: str, seed: int) -> dict[str, float]:
    """Loss parts of one batch with the conditions ``true``, ``absent`` or ``shuffled``."""
    from hfmat.diffusion.loss import diffusion_loss

    batch = dict(batch)
    if mode == "shuffled":
        perm = torch.randperm(len(batch["num_atoms"]), generator=torch.Generator().manual_seed(seed + 1))
        for name in conditions:
            batch[name] = batch[name][perm]
    parts = diffusion_loss(
        pipe.denoiser,
        batch,
        pipe.lattice_scheduler,
        pipe.coord_scheduler,
        pipe.type_scheduler,
        lattice_scale=pipe.denoiser.config.lattice_scale,
        generator=torch.Generator().manual_seed(seed),  # the same noise in every mode
        conditions=conditions,
        condition_drop_prob=1.0 if mode == "absent" else 0.0,
    )
    return {k: float(parts[k]) for k in PARTS}


@torch.no_grad()
def measure(args) -> dict:
    from hfmat.data import GraphCollator, load_crystal_dataset
    from hfmat.diffusion import CrystalDiffusionPipeline

    sys.path.insert(0, str(REPO / "training"))
    from train_diffusion import to_graphs

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.denoiser.eval()
    conditions = tuple(pipe.denoiser.condition_specs)
    if not conditions:
        raise SystemExit(f"{args.pipeline}: the denoiser has no conditions to measure")
    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[args.split])[args.split]
    if args.max_crystals:
        ds = ds.select(range(min(args.max_crystals, len(ds))))
    graphs = to_graphs(ds, conditions)
    collate = GraphCollator(properties=conditions)
    modes = ("true", "absent", "shuffled")
    rows = {m: [] for m in modes}  # per (batch, repeat): parts, weighted by the batch's crystals
    weights = []
    for r in range(args.repeats):
        for b, start in enumerate(range(0, len(graphs), args.batch_size)):
            batch = collate([graphs[i] for i in range(start, min(start + args.batch_size, len(graphs)))])
            seed = args.seed + 1000 * r + b
            for m in modes:
                rows[m].append(batch_losses(pipe, batch, conditions, m, seed))
            weights.append(len(batch["num_atoms"]))
    w = np.asarray(weights, dtype=float)
    out = {
        "pipeline": args.pipeline,
        "dataset": args.dataset,
        "split": args.split,
        "crystals": len(graphs),
        "repeats": args.repeats,
        "conditions": list(conditions),
    }
    for m in modes:
        out[m] = {k: float(np.average([x[k] for x in rows[m]], weights=w)) for k in PARTS}
    for other in ("absent", "shuffled"):
        d = {}
        for k in PARTS:
            diff = np.asarray([o[k] - t[k] for o, t in zip(rows[other], rows["true"])])
            mean = float(np.average(diff, weights=w))
            se = float(np.sqrt(np.average((diff - mean) ** 2, weights=w) / max(len(diff) - 1, 1)))
            d[k] = {"mean": mean, "se": se}
        out[f"{other}_minus_true"] = d
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = measure(args)
    print(
        f"{out['pipeline']}: {out['crystals']} {out['dataset']}/{out['split']} crystals x {out['repeats']} "
        f"noise draws, conditions {out['conditions']}"
    )
    print("| condition | " + " | ".join(PARTS) + " |")
    print("|---|" + "---|" * len(PARTS))
    for m in ("true", "absent", "shuffled"):
        print(f"| {m} | " + " | ".join(f"{out[m][k]:.4f}" for k in PARTS) + " |")
    for other in ("absent", "shuffled"):
        d = out[f"{other}_minus_true"]
        print(
            f"| {other} - true | "
            + " | ".join(f"{d[k]['mean']:+.4f} ± {d[k]['se']:.4f}" for k in PARTS)
            + " |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
