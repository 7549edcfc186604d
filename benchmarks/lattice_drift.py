"""Why a de novo model makes collapsed cells: near-singular lattices along the reverse chain.

    OMP_NUM_THREADS=1 python benchmarks/lattice_drift.py --pipeline checkpoints/crystal-diffusion-perov5-gen \
        --num-samples 500 --steps 200 --threads 1

Two measurements on the lattice diffusion (DDPM on the normalised lattice ``L / (lattice_scale *
N^(1/3))``), both with the smallest singular value ``s_min`` of the noisy lattice ``x_t`` divided by
the median singular value of the training split's normalised lattices, so models with different ``lattice_scale`` compare:

1. ``chain``: samples ``--num-samples`` crystals (corrector off: it moves only coordinates) and
   records ``x_t`` at every step; prints, every ``--every`` steps, the fraction of the chain's
   lattices that are near-singular (relative ``s_min`` below 0.1 and 0.2) next to the same fraction
   under the forward process ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for training lattices.
   A reverse chain that follows the model's training distribution matches the forward column.
2. ``probe``: noises ``--probe-crystals`` training crystals to timestep t (lattice, coordinates and
   atom types as in training) and regresses the denoiser's predicted lattice noise on the true noise,
   along the near-null direction ``n`` of ``x_t`` (``x_t n`` small) and along a random direction.
   The head predicts ``M(G) @ x_t`` (an invariant matrix times the lattice, as DiffCSP), so along
   ``n`` its output is ``M (x_t n)``: small unless ``M`` is large.

Nothing here is a test; the figures are in docs/denovo_density.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diffusion_gen import load_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-perov5-gen"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--train-split", default="val", help="the crystals the model was trained on")
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--every", type=int, default=10, help="print every this many steps")
    p.add_argument("--probe-crystals", type=int, default=2000, help="0 skips the probe")
    p.add_argument("--probe-timesteps", default="50,100,150,200,300")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    return p.parse_args(argv)


def relative_smin(lattices: torch.Tensor, unit: float) -> torch.Tensor:
    """Smallest singular value of each [3, 3] lattice over ``unit``."""
    return torch.linalg.svdvals(lattices.double())[..., -1] / unit


def record_chain(pipe, args) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The timesteps, the noisy lattices x_t [steps, B, 3, 3] seen by each predictor step, and the
    atom counts of a de novo sampling run."""
    scheduler = pipe.lattice_scheduler
    step = scheduler.step
    seen: list[tuple[int, torch.Tensor]] = []

    def recording_step(model_output, timestep, sample, **kwargs):
        seen.append((int(timestep), sample.detach().clone()))
        return step(model_output, timestep, sample, **kwargs)

    scheduler.step = recording_step
    try:
        out = pipe(
            num_samples=args.num_samples,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(args.seed),
            corrector_steps=0,
        )
    finally:
        del scheduler.step  # the bound method again
    counts = torch.tensor([len(s) for s in out.structures])
    return [t for t, _ in seen], torch.stack([x for _, x in seen]), counts


def chain_table(pipe, args, structures) -> str:
    timesteps, chain, counts = record_chain(pipe, args)
    n = torch.tensor([len(s) for s in structures])
    if len(set(counts.tolist()) | set(n.tolist())) != 1:
        raise SystemExit("lattice_drift assumes one atom count (Perov-5: 5 atoms per cell)")
    matrices = torch.tensor(np.stack([s.lattice.matrix for s in structures]), dtype=torch.float64)
    x0_all = pipe.denoiser.normalize_lattice(matrices, n)
    unit = float(torch.linalg.svdvals(x0_all).median())
    abar = pipe.lattice_scheduler.alphas_cumprod.double()
    gen = torch.Generator().manual_seed(args.seed)
    lines = [
        f"relative s_min = s_min(x_t) / {unit:.3f} (the clean lattices' median singular value)",
        "| t | abar_t | forward: s_min < 0.1 | < 0.2 | reverse chain: s_min < 0.1 | < 0.2 |",
        "|---|---|---|---|---|---|",
    ]
    for k in list(range(0, len(timesteps), args.every)):
        t = timesteps[k]
        pick = torch.randint(0, len(structures), (20000,), generator=gen)
        x0 = x0_all[pick]
        noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        forward = relative_smin(abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise, unit)
        reverse = relative_smin(chain[k], unit)
        lines.append(
            f"| {t} | {float(abar[t]):.3f} | {float((forward < 0.1).double().mean()):.4f} | "
            f"{float((forward < 0.2).double().mean()):.4f} | {float((reverse < 0.1).double().mean()):.4f} | "
            f"{float((reverse < 0.2).double().mean()):.4f} |"
        )
    return "\n".join(lines)


def slope(true: torch.Tensor, guess: torch.Tensor, direction: torch.Tensor) -> float:
    """Least-squares slope of the predicted on the true noise, both projected on ``direction``."""
    a, b = (true @ direction).flatten(), (guess @ direction).flatten()
    return float((a * b).sum() / (a * a).sum())


@torch.no_grad()
def probe_table(pipe, args, structures) -> str:
    den = pipe.denoiser.eval()
    structures = structures[: args.probe_crystals]
    b = len(structures)
    lattices = torch.tensor(np.stack([s.lattice.matrix for s in structures]), dtype=torch.float32)
    frac = torch.tensor(np.concatenate([s.frac_coords for s in structures]), dtype=torch.float32)
    types = torch.tensor([site.specie.Z for s in structures for site in s], dtype=torch.long)
    n = torch.tensor([len(s) for s in structures])
    per_atom = torch.repeat_interleave(torch.arange(b), n)
    x0 = den.normalize_lattice(lattices, n)
    unit = float(torch.linalg.svdvals(x0.double()).median())
    gen = torch.Generator().manual_seed(args.seed)
    lines = [
        "| t | lattices | count | slope along n | slope along a random direction |",
        "|---|---|---|---|---|",
    ]
    for t_ in (int(x) for x in args.probe_timesteps.split(",")):
        t = torch.full((b,), t_)
        eps = torch.randn(b, 3, 3, generator=gen)
        xt = pipe.lattice_scheduler.add_noise(x0, eps, t)
        coords = pipe.coord_scheduler.add_noise(frac, torch.randn(frac.shape, generator=gen), t[per_atom])
        masked = pipe.type_scheduler.add_noise(types, torch.rand(types.shape, generator=gen), t[per_atom])
        pred = den(masked, coords, xt, t, n).lattice_noise.float()
        _, sv, vh = torch.linalg.svd(xt)
        normal = vh[:, -1, :].unsqueeze(-1)  # x_t @ normal is the smallest
        rand = torch.randn(b, 3, 1, generator=gen)
        rand = rand / rand.norm(dim=1, keepdim=True)
        smin = sv[:, -1] / unit
        for name, sel in (
            ("near-singular (s_min < 0.15)", smin < 0.15),
            ("healthy (s_min >= 0.3)", smin >= 0.3),
        ):
            if int(sel.sum()) < 5:
                continue
            lines.append(
                f"| {t_} | {name} | {int(sel.sum())} | {slope(eps[sel], pred[sel], normal[sel]):.3f} | {slope(eps[sel], pred[sel], rand[sel]):.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    structures = load_split(args, args.train_split)  # all one atom count, as Perov-5
    print(f"{args.pipeline}: lattice_scale {pipe.denoiser.config.lattice_scale:.4f}")
    if args.num_samples:
        print(chain_table(pipe, args, structures))
    if args.probe_crystals:
        print()
        print(probe_table(pipe, args, structures))


if __name__ == "__main__":
    main()
