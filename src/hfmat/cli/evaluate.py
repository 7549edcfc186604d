"""hfmat evaluate: CSP or generation metrics of a set of predicted CIFs against a reference.

CSP scores the reference targets that have predictions (say --all-targets to count every target,
one with no prediction as a miss) and prints how many of how many. It exits with status 2, writing
nothing, when no prediction can be read or none names a target of the reference."""

import argparse

from hfmat.cli.relax_option import EVALUATE_RELAXED, add_relax_option, evaluate_relaxed, relax_potential

FORMATS = """\
predictions (--predictions PATH):
  - the folder of an `hfmat generate` / `hfmat diffuse` run, or its predictions.jsonl
  - a JSON Lines file: one {"material_id": "...", "cif": "..."} per line, several lines per id for
    k > 1, in sample order (optional integer "sample" field); material_id may be omitted for generation
  - a folder of CIFs: <material_id>__<i>.cif is candidate i (from 0) for target <material_id>;
    <material_id>.cif is a single candidate; for --task generation any names
  - a dataset saved with datasets' save_to_disk with columns cif (and material_id); PATH:SPLIT picks a split
reference (--reference SOURCE[:SPLIT]): anything hfmat.data.load_crystal_dataset accepts, e.g.
  perov_5:test (its CSVs in --data-dir, by default ../shared/data/perov_5), or a path; the split
  defaults to test.
writes OUT/metrics.json, OUT/report.md and PNG plots.

examples:
  hfmat diffuse --reference perov_5:test --limit 20 -n 20 --out runs/diffusion_csp
  hfmat evaluate --task csp --predictions runs/diffusion_csp/predictions.jsonl --reference perov_5:test \\
      --k 20 --out runs/eval_csp
  hfmat evaluate --task generation --predictions runs/denovo --reference perov_5:test --out runs/eval_gen
"""


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="CSP / generation metrics of predicted CIFs against a reference",
        description=__doc__,
        epilog=FORMATS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=["csp", "generation"], help="csp or generation metrics")
    p.add_argument(
        "--predictions", required=True, help="run folder, JSONL file, folder of CIFs or saved dataset"
    )
    p.add_argument("--reference", required=True, help="SOURCE[:SPLIT] of the targets / reference set")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the benchmark's CSVs (default: ../shared/data/DATASET from the current directory)",
    )
    p.add_argument("--k", type=int, default=None, help="candidates per target for CSP (default: all given)")
    p.add_argument(
        "--train", default=None, help="generation: SOURCE[:SPLIT] of the training set, for novelty"
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="benchmark name for the COV thresholds and published figures (default: from --reference)",
    )
    p.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="generation: valid samples drawn for the Wasserstein distances (default: all)",
    )
    p.add_argument(
        "--all-targets",
        action="store_true",
        help="csp: score every reference target, one with no prediction as a miss (default: only the "
        "targets that have predictions)",
    )
    p.add_argument("--subset", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument(
        "--max-cif-checks",
        type=int,
        default=1000,
        help="run the CIF validity checks on at most this many texts (a seeded sample; 0: none; "
        "default 1000)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_relax_option(p, EVALUATE_RELAXED)
    p.add_argument(
        "--hull-limit",
        type=int,
        default=None,
        help="generation with --relax: build the hull from the first N rows of --reference (cached)",
    )
    p.set_defaults(func=run)


CSP_KEYS = ["n_candidates", "match_rate", "rmse", "match_rate_k1", "rmse_k1"]
GENERATION_KEYS = [
    "n_generated",
    "structural_validity",
    "compositional_validity",
    "cov_recall",
    "cov_precision",
    "wdist_density",
    "wdist_num_elements",
    "uniqueness",
    "novelty",
]


def run(args) -> int:
    from hfmat.cli.reference import data_dir_for
    from hfmat.evaluation.pipeline import evaluate

    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    if args.subset and args.all_targets:
        raise ValueError("--subset and --all-targets contradict each other (--subset is the default now)")
    data_dir = data_dir_for(args.reference, args.data_dir)
    if args.train is not None:
        data_dir_for(args.train, args.data_dir, flag="--train")
    potential = relax_potential(args.relax)
    m = evaluate(
        args.task,
        args.predictions,
        args.reference,
        args.out,
        k=args.k,
        data_dir=data_dir,
        train=args.train,
        dataset=args.dataset,
        n_samples=args.n_samples,
        subset=not args.all_targets,
        max_cif_checks=None if args.max_cif_checks < 0 else args.max_cif_checks,
        workers=args.workers,
        progress=not args.no_progress,
    )
    if args.task == "csp":
        scope = (
            "every reference target (a target with no prediction counts as a miss)"
            if args.all_targets
            else "the targets that have predictions; --all-targets counts the others as misses"
        )
        print(f"targets: {m['n_targets']} of the reference's {m['n_reference_targets']} ({scope})")
    for key in CSP_KEYS if args.task == "csp" else GENERATION_KEYS:
        print(f"{key}: {m.get(key)}")
    if m["n_unreadable"]:
        print(
            f"skipped {m['n_unreadable']} of {m['n_predictions']} predictions that could not be read "
            "(each named in metrics.json issues; counted as invalid)"
        )
    print(f"{len(m['issues'])} input problem(s); wrote {args.out}/metrics.json and {args.out}/report.md")
    if potential is not None:
        evaluate_relaxed(args, potential, data_dir)
    return 0
