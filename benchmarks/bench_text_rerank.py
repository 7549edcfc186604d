"""Best-of-N for text-guided generation: rerank a text-conditioned pipeline's samples by Crystal CLIP.

    OMP_NUM_THREADS=1 python benchmarks/bench_text_rerank.py --pipeline crystal-diffusion-perov5-text \
        --clip crystal-clip-perov5 --num-prompts 100 --candidates 10 --keep 5 1 --out runs/bench_text_rerank

The prompts and the scoring are bench_text_guidance.py's (``--style`` descriptions of ``--num-prompts``
held-out crystals, seed ``--seed``; structural validity, then composition, element-set, crystal-system
and space-group match among the valid samples, as far as the style names them). The pipeline samples
``--candidates`` crystals per prompt at guidance scale ``--scale``; Crystal CLIP (the prompt's text
embedding against each sample's crystal embedding, cosine) keeps the ``--keep`` best of them. Only the
prompt is used to choose, never the held-out crystal. Each kept count is scored twice on the same
samples: the first K drawn (what K samples per prompt give without a reranker) and the CLIP top K
(what K kept of ``--candidates`` give). Writes ``--out``/text_rerank.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_text_guidance as bench  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", required=True, help="a text-conditioned de novo pipeline (folder or name)")
    p.add_argument("--clip", default="crystal-clip-perov5", help="the Crystal CLIP that reranks")
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--data-dir", default=str(bench.REPO.parent / "shared" / "data"))
    p.add_argument("--split", default="test")
    p.add_argument("--num-prompts", type=int, default=100)
    p.add_argument("--style", default="text_composition", choices=list(bench.STYLES))
    p.add_argument("--candidates", type=int, default=10, help="samples per prompt")
    p.add_argument("--keep", type=int, nargs="+", default=[5, 1], help="how many of them to keep")
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--corrector-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--num-atoms",
        default="drawn",
        choices=["drawn", "target"],
        help="cell sizes: drawn from the training distribution, or each prompt's crystal's (bench_text_guidance.py)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    bad = [k for k in args.keep if not 1 <= k <= args.candidates]
    if bad:
        p.error(f"--keep {bad}: each must be between 1 and --candidates ({args.candidates})")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.hub import load
    from hfmat.text import CrystalCLIP, clip_similarity, keep_top, rerank

    t0 = time.time()
    rows = bench.load_prompts(args)
    targets = [bench.targets_of(r) for r in rows]
    prompts = list(rows[args.style])
    pipe = load(CrystalDiffusionPipeline, args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    clip = CrystalCLIP.from_pretrained(args.clip).eval()
    args.samples = args.candidates
    atoms = list(rows["num_atoms"]) if args.num_atoms == "target" else None
    structures = bench.sample(pipe, args, prompts=prompts, atoms=atoms)
    sampled_s = time.time() - t0
    info = [bench.analyse(s) for s in structures]
    similarity = clip_similarity(clip, [p for p in prompts for _ in range(args.candidates)], structures)
    drawn = list(range(len(structures)))
    best = rerank(similarity, args.candidates)
    names = bench.STYLES[args.style]
    results = []
    for keep in args.keep:
        for label, order in (("first drawn", drawn), ("CLIP top", best)):
            chosen = keep_top(info, order, args.candidates, keep)
            results.append(
                {
                    "keep": keep,
                    "choice": label,
                    "validity": sum(s["valid"] for s in chosen) / len(chosen),
                    "match": bench.match_rates(chosen, targets, names, keep),
                }
            )
    report = {
        "command": "python benchmarks/bench_text_rerank.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "pipeline": str(args.pipeline),
        "clip": str(args.clip),
        "style": args.style,
        "num_prompts": len(rows),
        "candidates": args.candidates,
        "scale": args.scale,
        "steps": args.steps,
        "seed": args.seed,
        "num_atoms": args.num_atoms,
        "rows": results,
        "timings_s": {"sampling_s": round(sampled_s, 1), "total_s": round(time.time() - t0, 1)},
    }
    table = markdown_table(report)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "text_rerank.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def markdown_table(report: dict) -> str:
    names = list(report["rows"][0]["match"])
    lines = [
        "| kept per prompt | chosen | struct. valid | " + " | ".join(f"{n} match" for n in names) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for r in report["rows"]:
        of = f" of {report['candidates']}" if r["choice"] == "CLIP top" else ""
        lines.append(
            f"| {r['keep']} | {r['choice']}{of} | {bench._pct(r['validity'])} | "
            + " | ".join(bench._pct(r["match"][n]) for n in names)
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
