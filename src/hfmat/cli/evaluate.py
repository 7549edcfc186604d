"""hfmat evaluate: CSP or generation metrics of a set of predicted CIFs against a reference."""

FORMATS = """\
predictions (--predictions PATH):
  - a folder of CIFs: <material_id>__<i>.cif is candidate i (from 0) for target <material_id>;
    <material_id>.cif is a single candidate; for --task generation any names
  - a JSON Lines file: one {"material_id": "...", "cif": "..."} per line, several lines per id for
    k > 1, in sample order (optional integer "sample" field); material_id may be omitted for generation
  - a dataset saved with datasets' save_to_disk with columns cif (and material_id); PATH:SPLIT picks a split
reference (--reference SOURCE[:SPLIT]): anything hfmat.data.load_crystal_dataset accepts, e.g.
  perov_5:test --data-dir ../shared/data/perov_5, or a path; the split defaults to test.
writes OUT/metrics.json, OUT/report.md and PNG plots.
"""


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "evaluate",
        help="CSP / generation metrics of predicted CIFs against a reference",
        description=__doc__,
        epilog=FORMATS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=["csp", "generation"])
    p.add_argument("--predictions", required=True, help="folder of CIFs, JSONL file or saved dataset")
    p.add_argument("--reference", required=True, help="SOURCE[:SPLIT] of the targets / reference set")
    p.add_argument("--data-dir", default=None, help="where load_crystal_dataset finds the reference files")
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
        "--subset",
        action="store_true",
        help="csp: evaluate only the targets that have predictions (default: every reference target)",
    )
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
    p.set_defaults(func=run)


def run(args) -> int:
    from hfmat.evaluation.pipeline import evaluate

    m = evaluate(
        args.task,
        args.predictions,
        args.reference,
        args.out,
        k=args.k,
        data_dir=args.data_dir,
        train=args.train,
        dataset=args.dataset,
        n_samples=args.n_samples,
        subset=args.subset,
        max_cif_checks=None if args.max_cif_checks < 0 else args.max_cif_checks,
        workers=args.workers,
        progress=not args.no_progress,
    )
    keys = (
        ["n_targets", "n_candidates", "match_rate", "rmse", "match_rate_k1", "rmse_k1"]
        if args.task == "csp"
        else [
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
    )
    for key in keys:
        print(f"{key}: {m.get(key)}")
    print(f"{len(m['issues'])} input problem(s); wrote {args.out}/metrics.json and {args.out}/report.md")
    return 0
