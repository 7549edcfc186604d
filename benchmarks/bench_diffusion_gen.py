"""De novo generation benchmark: sample crystals from a pipeline and score them as CDVAE / DiffCSP do.

    python benchmarks/bench_diffusion_gen.py --pipeline checkpoints/crystal-diffusion-perov5-gen \
        --num-samples 1000 --steps 200 --seed 0 --threads 1 --json runs/gen_bench.json

It samples ``--num-samples`` de novo crystals (atom counts drawn from the pipeline's stored
distribution, seeded, in batches of ``--batch-size``, with the pipeline's progress bar), times the
sampling, and computes with ``hfmat.evaluation.generation_metrics`` (the code behind
``hfmat evaluate --task generation``): structural and compositional (SMACT) validity, COV-R /
COV-P against the ``--split`` (test) crystals with CDVAE's thresholds for the dataset, the
Wasserstein distances (EMD) of density and of the number of elements between the valid samples and
that split, and, unless ``--no-novelty``, uniqueness and novelty against the split the pipeline was
trained on (read from its training_summary.json, or ``--train-split``). It prints the figures next to
the published CDVAE and DiffCSP ones with the command and the wall times, and ``--json`` writes them.

``--card-from JSON`` does not sample: it rewrites the pipeline's model card (README.md) with the
figures of that result file.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

#: Rates that generation_metrics returns as fractions and the card and table show in %.
PERCENT = (
    "structural_validity",
    "compositional_validity",
    "validity",
    "cov_recall",
    "cov_precision",
    "uniqueness",
    "novelty",
)
#: Every figure reported, in order.
FIGURES = (*PERCENT[:5], "wdist_density", "wdist_num_elements", *PERCENT[5:])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-perov5-gen"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test", help="reference split for COV and the EMDs")
    p.add_argument(
        "--max-reference",
        type=int,
        default=None,
        help="use a seeded random subset of this many reference crystals (default: all)",
    )
    p.add_argument(
        "--train-split",
        default=None,
        help="split for novelty (default: the train_split in the pipeline's training_summary.json)",
    )
    p.add_argument("--no-novelty", action="store_true", help="skip uniqueness and novelty")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument(
        "--wdist-samples",
        type=int,
        default=None,
        help="valid samples (a seeded draw) for the EMDs, CDVAE uses 1,000 of 10,000 (default: all valid)",
    )
    p.add_argument("--steps", type=int, default=200, help="num_inference_steps")
    p.add_argument("--corrector-steps", type=int, default=None, help="default: the pipeline's")
    p.add_argument("--batch-size", type=int, default=250, help="crystals per denoiser batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--workers", type=int, default=1, help="processes for the metrics")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--card-from", default=None, metavar="JSON", help="rewrite the card from this result")
    p.add_argument("--card-note", default="", help="with --card-from: a paragraph added to the evaluation")
    p.add_argument("--card-limitations", default=None, help="with --card-from: the limitations paragraph")
    return p.parse_args(argv)


def load_split(args, split: str, limit: int | None = None):
    """The structures of one split of the dataset (a seeded subset of ``limit`` of them)."""
    from pymatgen.core import Structure

    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[split])[split]
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=args.seed).select(range(limit))
    return [Structure.from_str(text, fmt="cif") for text in ds["cif"]]


def trained_split(pipeline: str) -> str | None:
    path = Path(pipeline) / "training_summary.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("config", {}).get("train_split")


def sample(pipe, args) -> tuple[list, float]:
    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    out = pipe(
        num_samples=args.num_samples,
        num_inference_steps=args.steps,
        generator=gen,
        corrector_steps=args.corrector_steps,
        batch_size=args.batch_size,
    )
    return out.structures, time.perf_counter() - start


def figures(metrics: dict) -> dict:
    """The reported figures: rates in %, EMDs as they are, None where not computed."""
    out = {}
    for key in FIGURES:
        value = metrics.get(key)
        out[key] = None if value is None else (100 * value if key in PERCENT else value)
    return out


def command_line(argv) -> str:
    argv = sys.argv[1:] if argv is None else list(argv)
    return "python benchmarks/bench_diffusion_gen.py " + " ".join(shlex.quote(a) for a in argv)


def load_de_novo_pipeline(args):
    """``args.pipeline`` loaded with ``args.threads`` torch threads; exits with a one-line message
    if it is a structure-prediction pipeline (it cannot generate de novo)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    if pipe.type_scheduler is None:
        raise SystemExit(
            f"{args.pipeline} is a structure-prediction pipeline (no type_scheduler): not de novo"
        )
    pipe.set_progress_bar_config(disable=args.no_progress, desc="sampling")
    return pipe


def run(args, argv=None) -> dict:
    from hfmat.evaluation import generation_metrics
    from hfmat.hub.provenance import portable_config

    pipe = load_de_novo_pipeline(args)

    start = time.perf_counter()
    reference = load_split(args, args.split, args.max_reference)
    train_split = None if args.no_novelty else (args.train_split or trained_split(args.pipeline))
    train = load_split(args, train_split) if train_split else None
    load_s = time.perf_counter() - start

    structures, sampling_s = sample(pipe, args)
    start = time.perf_counter()
    metrics = generation_metrics(
        structures,
        train,
        reference,
        dataset=args.dataset,
        n_samples=args.wdist_samples,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
    )
    metrics_s = time.perf_counter() - start
    per_sample = metrics.pop("per_sample")
    if args.no_novelty:
        metrics["uniqueness"] = metrics["novelty"] = metrics["unique_and_novel"] = None
    # one bucket per kind of failure: "shortest interatomic distance 0.36 A is below 0.5 A" -> "... x A ..."
    reasons = Counter(re.sub(r"\d+\.\d+", "x", r["reason"].split(":")[0]) for r in per_sample if r["reason"])
    return {
        "command": command_line(argv),
        "args": portable_config(vars(args)),
        "pipeline": str(args.pipeline),
        "reference": f"{args.dataset}/{args.split} ({len(reference)} crystals)",
        "novelty_reference": None
        if train is None
        else f"{args.dataset}/{train_split} ({len(train)} crystals)",
        "torch_threads": torch.get_num_threads(),
        "figures": figures(metrics),
        "metrics": metrics,
        "invalid_reasons": dict(reasons.most_common()),
        "formulas": dict(Counter(r["formula"] for r in per_sample).most_common(10)),
        "num_atoms": dict(sorted(Counter(r["num_atoms"] for r in per_sample).items())),
        "timing": {
            "load_s": load_s,
            "sampling_s": sampling_s,
            "structures_per_s": len(structures) / sampling_s,
            "metrics_s": metrics_s,
        },
    }


def report(result: dict) -> str:
    from hfmat.diffusion.card import PUBLISHED_GENERATION, generation_table

    args = result["args"]
    published = PUBLISHED_GENERATION.get(args["dataset"], {})
    t = result["timing"]
    lines = [
        f"$ {result['command']}",
        f"de novo generation: {result['pipeline']}, {args['num_samples']} samples, {args['steps']} steps, "
        f"seed {args['seed']}, torch threads {result['torch_threads']}",
        f"reference {result['reference']}; novelty against {result['novelty_reference'] or 'nothing (skipped)'}",
        "",
        generation_table(result["figures"], published),
        "",
        f"sampling {t['sampling_s']:.1f} s ({t['structures_per_s']:.2f} structures/s), metrics "
        f"{t['metrics_s']:.1f} s, data {t['load_s']:.1f} s",
        f"invalid samples by reason: {result['invalid_reasons'] or 'none'}",
        f"most common formulas: {result['formulas']}",
    ]
    return "\n".join(lines)


def write_card(args) -> None:
    """Rewrite the pipeline's model card from a result file of this script."""
    from hfmat.diffusion.card import write_model_card

    result = json.loads(Path(args.card_from).read_text())
    a, fig, t = result["args"], result["figures"], result["timing"]
    text = (
        f"De novo generation: {a['num_samples']} crystals sampled with {a['steps']} steps "
        f"(seed {a['seed']}, {t['structures_per_s']:.2f} structures/s on {result['torch_threads']} CPU "
        f"thread(s)), scored with `hfmat.evaluation.generation_metrics` (the metrics of "
        f"`hfmat evaluate --task generation`) against {result['reference']}, which the model never saw. "
        f"Validity counts all {a['num_samples']} samples; the EMDs compare the "
        f"{result['metrics'].get('n_wdist_samples', 'valid')} valid samples with the reference; COV-P "
        f"divides by all samples. "
        + (
            f"Novelty is measured against {result['novelty_reference']}, the split the model was trained on. "
            if result.get("novelty_reference")
            else ""
        )
        + f"Measured with:\n\n- `{result['command']}`"
        + (f"\n\n{args.card_note}" if args.card_note else "")
    )
    evaluation = {"text": text, "generation": fig, "dataset": a["dataset"]}
    if args.card_limitations:
        evaluation["limitations"] = args.card_limitations
    write_model_card(args.pipeline, evaluation=evaluation)
    print(f"card written to {Path(args.pipeline) / 'README.md'}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.card_from:
        write_card(args)
        return {}
    result = run(args, argv)
    print(report(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
