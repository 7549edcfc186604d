"""How close a pipeline's samples come to real crystals in COV's structure fingerprint, next to the
dataset's own crystals with and without noise: what the COV threshold asks of local geometry.

    OMP_NUM_THREADS=1 python benchmarks/fingerprint_precision.py --pipeline checkpoints/crystal-diffusion-carbon24 \
        --dataset carbon_24 --num-samples 200 --steps 50 --threads 1

COV (CDVAE) counts a sample as close to a reference crystal when the distance between their
CrystalNN structure fingerprints (``hfmat.evaluation.fingerprints``) is within the dataset's
threshold (``COV_CUTOFFS``: 0.2 for Carbon-24 and Perov-5, 0.4 for MP-20). For each row this prints
the distance from every crystal to its nearest test crystal (quantiles), the share within the
threshold (COV-P's structure half) and the median shortest interatomic distance:

- ``--reference-samples`` crystals of the training split, as they are and with Gaussian noise of
  each ``--noise`` (Angstrom, per Cartesian component) on every atom;
- ``--num-samples`` samples of ``--pipeline``: a structure-prediction pipeline is prompted with the
  compositions of that many training crystals (so its atom counts follow the training split's); a
  de novo pipeline samples unconditionally.

Nothing here is a test: it is the measurement behind the Carbon-24 paragraph of docs/guidance.md
("Not done yet").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure
from scipy.spatial.distance import cdist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diffusion_gen import load_split  # noqa: E402  (a split's structures, one loader)

REPO = Path(__file__).resolve().parents[1]
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-carbon24"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="carbon_24")
    p.add_argument("--train-split", default="val", help="the split the pipeline was trained on")
    p.add_argument("--split", default="test", help="the reference split (COV's)")
    p.add_argument("--reference-samples", type=int, default=200)
    p.add_argument("--noise", type=float, nargs="*", default=[0.05, 0.1, 0.2], help="Angstrom")
    p.add_argument("--num-samples", type=int, default=200, help="pipeline samples (0: none)")
    p.add_argument("--steps", type=int, default=50, help="num_inference_steps")
    p.add_argument("--corrector-steps", type=int, default=None, help="default: the pipeline's")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--workers", type=int, default=1, help="processes for the fingerprints")
    p.add_argument("--json", default=None, help="write the rows here")
    return p.parse_args(argv)


def perturbed(structures: list[Structure], sigma: float, rng: np.random.Generator) -> list[Structure]:
    return [
        Structure(
            s.lattice,
            s.species,
            s.cart_coords + rng.normal(0.0, sigma, (len(s), 3)),
            coords_are_cartesian=True,
        )
        for s in structures
    ]


def shortest_distance(s: Structure | None) -> float:
    """:func:`hfmat.cif.structural.shortest_distance`, NaN for no structure or a single site."""
    from hfmat.cif.structural import shortest_distance as shortest

    d = shortest(s) if isinstance(s, Structure) else None
    return float("nan") if d is None else d


def row(name: str, structures: list, reference: np.ndarray, cutoff: float, workers: int) -> dict:
    from hfmat.evaluation.fingerprints import fingerprints

    fps = fingerprints(structures, workers=workers, desc=name, progress=False)
    dist = np.array([cdist(fp[None], reference).min() if fp is not None else np.nan for fp, _, _ in fps])
    ok = ~np.isnan(dist)
    return {
        "row": name,
        "n": len(structures),
        "n_fingerprint": int(ok.sum()),
        "within_cutoff": float((dist[ok] <= cutoff).mean()) if ok.any() else None,
        "quantiles": dict(zip(map(str, QUANTILES), np.quantile(dist[ok], QUANTILES).round(4).tolist()))
        if ok.any()
        else None,
        "median_shortest_distance": float(np.nanmedian([shortest_distance(s) for s in structures])),
    }


def pipeline_samples(args, train: list[Structure], rng: np.random.Generator) -> list:
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(desc="sampling")
    kwargs = dict(
        num_inference_steps=args.steps,
        corrector_steps=args.corrector_steps,
        generator=torch.Generator().manual_seed(args.seed),
        batch_size=args.batch_size,
    )
    if pipe.type_scheduler is None:  # structure prediction: the training split's compositions
        pick = rng.choice(len(train), args.num_samples, replace=len(train) < args.num_samples)
        return pipe(compositions=[train[i].composition for i in pick], **kwargs).structures
    return pipe(num_samples=args.num_samples, **kwargs).structures


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfmat.evaluation.fingerprints import cached_fingerprints
    from hfmat.evaluation.reference import COV_CUTOFFS, canonical_dataset

    cutoff = COV_CUTOFFS[canonical_dataset(args.dataset)]["struc"]
    test = load_split(args, args.split)
    train = load_split(args, args.train_split)
    ref_fps = cached_fingerprints(test, workers=args.workers, progress=False)
    reference = np.array([fp for fp, _, _ in ref_fps if fp is not None])
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(train), min(args.reference_samples, len(train)), replace=False)
    sample = [train[i] for i in pick]
    rows = [row(f"{args.train_split} split", sample, reference, cutoff, args.workers)]
    for sigma in args.noise:
        noisy = perturbed(sample, sigma, rng)
        rows.append(row(f"{args.train_split} + noise {sigma} A", noisy, reference, cutoff, args.workers))
    if args.num_samples:
        samples = pipeline_samples(args, train, rng)
        name = f"{Path(args.pipeline).name}, {args.steps} steps"
        rows.append(row(name, samples, reference, cutoff, args.workers))
    print(f"nearest-{args.split} structure-fingerprint distance ({args.dataset}; COV threshold {cutoff})")
    print("| crystals | n | within threshold | distance p10 / p50 / p90 | median shortest distance (A) |")
    print("|---|---|---|---|---|")
    for r in rows:
        q = r["quantiles"] or {}
        within = "-" if r["within_cutoff"] is None else f"{100 * r['within_cutoff']:.1f} %"
        print(
            f"| {r['row']} | {r['n']} | {within} | {q.get('0.1', '-')} / {q.get('0.5', '-')} / "
            f"{q.get('0.9', '-')} | {r['median_shortest_distance']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "cutoff": cutoff, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
