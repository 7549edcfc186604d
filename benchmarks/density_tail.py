"""Where a de novo model's density EMD comes from: quantiles, the tail and its cells.

    OMP_NUM_THREADS=1 python benchmarks/density_tail.py --pipeline checkpoints/crystal-diffusion-perov5-gen \
        --num-samples 1000 --steps 200 --seed 0 --threads 1 --save /tmp/gen_1000.json

samples ``--num-samples`` de novo crystals as ``benchmarks/bench_diffusion_gen.py`` does (same seed,
same batches, so the same samples), or reads them back with ``--load`` (a file ``--save`` wrote:
pymatgen ``Structure.as_dict()`` per sample), and prints:

- the density (g/cm^3), volume per atom (A^3), mass per atom (amu) and lattice quantiles of the
  valid samples (structurally and SMACT valid, the set the EMD uses) against the reference split
  (test) and the training split (``--train-split``, default the pipeline's);
- the density EMD (``scipy.stats.wasserstein_distance``, as CDVAE / DiffCSP) over all valid
  samples, over the seeded 1,000-sample draw ``hfmat.evaluation.generation_metrics`` makes, and
  with the samples outside the reference's density range clipped to it (what the tail costs);
- the ``--tail`` densest and least dense valid samples: formula, atom count, lattice lengths and
  angles, volume and mass per atom;
- with ``--coverage``: which samples COV-P misses (no reference crystal within CDVAE's thresholds),
  split into invalid, distorted (a lattice angle more than 5 degrees from the training cells' 90)
  and the rest, and the same COV-P for the training split itself against the reference (the
  level a model that reproduced its training data exactly would reach).

Nothing here is a test: it is the measurement behind docs/denovo_density.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diffusion_gen import load_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUANTILES = (0.0, 0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999, 1.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-perov5-gen"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test", help="reference split (the EMD's)")
    p.add_argument("--train-split", default=None, help="default: the pipeline's training split")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--corrector-steps", type=int, default=None, help="default: the pipeline's")
    p.add_argument("--corrector-step-lr", type=float, default=None, help="default: the pipeline's")
    p.add_argument(
        "--predictor",
        choices=("reverse_diffusion", "ancestral"),
        default=None,
        help="default: the pipeline's",
    )
    p.add_argument(
        "--lattice-sampler",
        choices=("ddpm", "ddpm-large", "ddim"),
        default="ddpm",
        help="the lattice reverse step: the pipeline's DDPM (posterior variance), DDPM with variance "
        "beta_t (variance_type fixed_large), or deterministic DDIM (eta 0) on the same timesteps",
    )
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--wdist-samples", type=int, default=1000, help="the seeded draw for the EMD")
    p.add_argument("--tail", type=int, default=8, help="samples listed at each end")
    p.add_argument("--save", default=None, help="write the samples here (JSON of Structure.as_dict)")
    p.add_argument("--load", default=None, help="read samples from a --save file instead of sampling")
    p.add_argument("--coverage", action="store_true", help="COV-P per sample and its floor")
    p.add_argument("--workers", type=int, default=1, help="processes for the fingerprints")
    p.add_argument("--json", default=None, help="write the figures here")
    return p.parse_args(argv)


def sample(args) -> list:
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    if args.predictor is not None:
        pipe.coord_scheduler.register_to_config(predictor=args.predictor)
    if args.lattice_sampler == "ddpm-large":
        pipe.lattice_scheduler.register_to_config(variance_type="fixed_large")
    elif args.lattice_sampler == "ddim":
        pipe.lattice_scheduler = deterministic_ddim(pipe.lattice_scheduler)
    start = time.perf_counter()
    out = pipe(
        num_samples=args.num_samples,
        num_inference_steps=args.steps,
        generator=torch.Generator().manual_seed(args.seed),
        corrector_steps=args.corrector_steps,
        corrector_step_lr=args.corrector_step_lr,
        batch_size=args.batch_size,
    )
    print(f"sampled {args.num_samples} in {time.perf_counter() - start:.0f} s")
    return out.structures


def deterministic_ddim(ddpm):
    """diffusers' DDIMScheduler (eta 0) with the DDPM scheduler's betas, on the timesteps the
    pipeline passes (``set_timesteps(timesteps=...)``, which DDIMScheduler does not take: for
    "trailing" spacing its own ``set_timesteps(len(timesteps))`` gives the same ones)."""
    from diffusers import DDIMScheduler

    class TimestepsDDIM(DDIMScheduler):
        def set_timesteps(self, num_inference_steps=None, device=None, timesteps=None):
            super().set_timesteps(len(timesteps), device)
            if self.timesteps.tolist() != list(timesteps):
                raise ValueError("DDIM's timesteps differ from the pipeline's schedule")

    return TimestepsDDIM.from_config(ddpm.config)


def describe(structure) -> dict:
    """The figures of one structure; ``valid`` as generation_metrics counts it."""
    from hfmat.cif.structural import structural_validity
    from hfmat.evaluation.composition import smact_valid

    lattice = structure.lattice
    n = len(structure)
    try:
        ok = structural_validity(structure)[0]
    except Exception:  # noqa: BLE001 - a degenerate lattice is just invalid
        ok = False
    return {
        "formula": structure.composition.reduced_formula,
        "num_atoms": n,
        "density": float(structure.density),
        "volume_per_atom": float(structure.volume) / n,
        "mass_per_atom": float(structure.composition.weight) / n,
        "abc": [round(x, 3) for x in lattice.abc],
        "angles": [round(x, 1) for x in lattice.angles],
        "valid": bool(ok and smact_valid(structure.composition)),
    }


def reference_rows(structures) -> list[dict]:
    rows = [describe(s) for s in structures]
    for row in rows:
        row["valid"] = True  # a reference crystal counts whatever the checks say (as CDVAE)
    return rows


def precision_flags(structures, reference, dataset: str, workers: int, cache: bool = False) -> dict:
    """Per structure, the test behind COV-P (``hfmat.evaluation.generation.coverage``): whether the
    nearest reference crystal by structure fingerprint is within CDVAE's threshold (``struc_ok``),
    whether the nearest by composition is (``comp_ok``), and both (``covered``); no fingerprint =
    not covered. ``cache``: the structures' fingerprints on disk too (a dataset split)."""
    from scipy.spatial.distance import cdist

    from hfmat.evaluation.fingerprints import cached_fingerprints, fingerprints
    from hfmat.evaluation.magpie_scaler import scale_magpie
    from hfmat.evaluation.reference import COV_CUTOFFS, canonical_dataset

    cut = COV_CUTOFFS[canonical_dataset(dataset)]
    featurize = cached_fingerprints if cache else fingerprints
    gen = featurize(structures, workers=workers, progress=False)
    ref = [
        (s, c)
        for s, c, _ in cached_fingerprints(reference, workers=workers, progress=False)
        if s is not None and c is not None
    ]
    keep = [i for i, (s, c, _) in enumerate(gen) if s is not None and c is not None]
    out = {k: np.zeros(len(structures), dtype=bool) for k in ("covered", "struc_ok", "comp_ok")}
    if keep:
        struc = cdist(np.stack([gen[i][0] for i in keep]), np.stack([s for s, _ in ref]))
        comp = cdist(scale_magpie([gen[i][1] for i in keep]), scale_magpie([c for _, c in ref]))
        out["struc_ok"][keep] = struc.min(axis=1) <= cut["struc"]
        out["comp_ok"][keep] = comp.min(axis=1) <= cut["comp"]
        # as CDVAE: the nearest by structure and the nearest by composition need not be one crystal
        out["covered"] = out["struc_ok"] & out["comp_ok"]
    return out


def quantile_table(columns: dict[str, np.ndarray], title: str) -> str:
    head = "| " + title + " | n | " + " | ".join(f"q{q:g}" for q in QUANTILES) + " | mean |"
    lines = [head, "|" + "---|" * (len(QUANTILES) + 3)]
    for name, values in columns.items():
        qs = np.quantile(values, QUANTILES)
        lines.append(
            f"| {name} | {len(values)} | " + " | ".join(f"{q:.3g}" for q in qs) + f" | {values.mean():.3g} |"
        )
    return "\n".join(lines)


def emd_figures(gen: np.ndarray, ref: np.ndarray, draw: int | None, seed: int) -> dict:
    """The density EMD over all values, over a seeded draw as generation_metrics makes it, and with
    the values outside the reference's range clipped to it."""
    from scipy.stats import wasserstein_distance

    out = {"all": float(wasserstein_distance(gen, ref))}
    low, high = ref.min(), ref.max()
    if draw is not None and len(gen) > draw:
        pick = np.random.default_rng(seed).choice(len(gen), draw, replace=False)
        out["draw"] = float(wasserstein_distance(gen[pick], ref))
        out["draw_outside_range"] = int(((gen[pick] < low) | (gen[pick] > high)).sum())
        out["draw_clipped"] = float(wasserstein_distance(np.clip(gen[pick], low, high), ref))
    out["outside_range"] = int(((gen < low) | (gen > high)).sum())
    out["clipped"] = float(wasserstein_distance(np.clip(gen, low, high), ref))
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pymatgen.core import Structure

    if args.load:
        structures = [Structure.from_dict(d) for d in json.loads(Path(args.load).read_text())]
    else:
        structures = sample(args)
        if args.save:
            Path(args.save).parent.mkdir(parents=True, exist_ok=True)
            Path(args.save).write_text(json.dumps([s.as_dict() for s in structures]))
    gen = [describe(s) for s in structures]
    valid = [r for r in gen if r["valid"]]
    train_split = args.train_split
    if train_split is None:
        summary = Path(args.pipeline) / "training_summary.json"
        if summary.is_file():
            train_split = json.loads(summary.read_text()).get("config", {}).get("train_split")
    ref_structures = load_split(args, args.split)
    train_structures = load_split(args, train_split) if train_split and train_split != args.split else []
    ref, train = reference_rows(ref_structures), reference_rows(train_structures)

    def col(rows, key):
        return np.array([r[key] for r in rows], dtype=float)

    print(f"{len(gen)} samples, {len(valid)} valid; reference {args.dataset}/{args.split} ({len(ref)})")
    sets = {"generated (valid)": valid, f"{args.split}": ref}
    if train:
        sets[f"{train_split} (training)"] = train
    for key, title in (
        ("density", "density g/cm^3"),
        ("volume_per_atom", "volume/atom A^3"),
        ("mass_per_atom", "mass/atom amu"),
    ):
        print()
        print(quantile_table({name: col(rows, key) for name, rows in sets.items()}, title))
    for i, axis in enumerate("abc"):
        print()
        print(
            quantile_table(
                {name: np.array([r["abc"][i] for r in rows]) for name, rows in sets.items()},
                f"length {axis} A",
            )
        )
    print()
    print(
        quantile_table(
            {name: np.array([a for r in rows for a in r["angles"]]) for name, rows in sets.items()},
            "angles deg",
        )
    )

    density = col(valid, "density")
    emd = emd_figures(density, col(ref, "density"), args.wdist_samples, args.seed)
    print()
    print(
        f"density EMD vs {args.split}: all {len(valid)} valid {emd['all']:.4f}; "
        + (
            f"seeded draw of {args.wdist_samples} {emd['draw']:.4f} ({emd['draw_outside_range']} of them "
            f"outside the reference range, clipped {emd['draw_clipped']:.4f}); "
            if "draw" in emd
            else ""
        )
        + f"{emd['outside_range']} outside the reference range, clipped to it {emd['clipped']:.4f}"
    )
    cubic = np.array([not distorted(r) for r in valid])
    emd["distorted"] = int((~cubic).sum())
    emd["distorted_all_samples"] = sum(distorted(r) for r in gen)
    emd["without_distorted"] = emd_figures(density[cubic], col(ref, "density"), None, args.seed)["all"]
    print(
        f"{emd['distorted']} valid samples ({emd['distorted_all_samples']} of all) have a distorted cell "
        f"(an angle > 5 deg from 90); "
        f"the EMD without them: {emd['without_distorted']:.4f}"
    )
    if train:
        from scipy.stats import wasserstein_distance

        emd["train_vs_ref"] = float(wasserstein_distance(col(train, "density"), col(ref, "density")))
        print(f"floor: {train_split} vs {args.split} density EMD {emd['train_vs_ref']:.4f}")

    order = np.argsort(density)
    print()
    print("| end | formula | N | density | volume/atom | mass/atom | a b c | angles |")
    print("|---|---|---|---|---|---|---|---|")
    for end, idx in (("high", order[::-1][: args.tail]), ("low", order[: args.tail])):
        for i in idx:
            r = valid[i]
            print(
                f"| {end} | {r['formula']} | {r['num_atoms']} | {r['density']:.3g} | {r['volume_per_atom']:.3g} "
                f"| {r['mass_per_atom']:.3g} | {r['abc']} | {r['angles']} |"
            )
    result = {
        "args": vars(args),
        "n": len(gen),
        "n_valid": len(valid),
        "emd": emd,
        "tail": [valid[i] for i in order[::-1][: args.tail]],
    }
    if args.coverage:
        result["coverage"] = coverage_breakdown(args, structures, gen, ref_structures, train_structures)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


def distorted(row: dict, tolerance: float = 5.0) -> bool:
    """A lattice angle more than ``tolerance`` degrees from 90 (every Perov-5 cell is cubic)."""
    return max(abs(a - 90) for a in row["angles"]) > tolerance


def coverage_breakdown(args, structures, gen, ref_structures, train_structures) -> dict:
    flags = precision_flags(structures, ref_structures, args.dataset, args.workers)
    covered = flags["covered"]
    missed = ~covered
    invalid = np.array([not r["valid"] for r in gen])
    bent = np.array([distorted(r) for r in gen])
    cubic_missed = missed & ~invalid & ~bent
    out = {
        "cov_precision": float(covered.mean()),
        "missed": int(missed.sum()),
        "missed_invalid": int((missed & invalid).sum()),
        "missed_valid_distorted": int((missed & ~invalid & bent).sum()),
        "missed_valid_cubic": int(cubic_missed.sum()),
        "cubic_missed_structure_only": int((cubic_missed & ~flags["struc_ok"] & flags["comp_ok"]).sum()),
        "cubic_missed_composition_only": int((cubic_missed & flags["struc_ok"] & ~flags["comp_ok"]).sum()),
        "cubic_missed_both": int((cubic_missed & ~flags["struc_ok"] & ~flags["comp_ok"]).sum()),
        "cubic_missed_formulas": sorted(gen[i]["formula"] for i in np.flatnonzero(cubic_missed)),
        "distorted": int(bent.sum()),
        "distorted_covered": int((bent & covered).sum()),
    }
    print()
    print(
        f"COV-P {100 * out['cov_precision']:.2f} %: {out['missed']} of {len(gen)} samples not covered: "
        f"{out['missed_invalid']} invalid, {out['missed_valid_distorted']} valid with a distorted cell "
        f"(an angle > 5 deg from 90; {out['distorted']} distorted in all, {out['distorted_covered']} of "
        f"them covered), {out['missed_valid_cubic']} valid cubic (nearest reference too far by "
        f"structure fingerprint only {out['cubic_missed_structure_only']}, by composition only "
        f"{out['cubic_missed_composition_only']}, both {out['cubic_missed_both']}: "
        f"{', '.join(out['cubic_missed_formulas'])})"
    )
    if train_structures:
        floor = precision_flags(train_structures, ref_structures, args.dataset, args.workers, cache=True)
        out["train_cov_precision"] = float(floor["covered"].mean())
        print(
            f"floor: the training split's own crystals as samples: COV-P {100 * out['train_cov_precision']:.2f} % "
            f"({int((~floor['covered']).sum())} of {len(train_structures)} not covered)"
        )
    return out


if __name__ == "__main__":
    main()
