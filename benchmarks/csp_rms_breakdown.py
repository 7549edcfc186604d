"""Where a structure-prediction model's k=1 RMSE comes from: tight and loose matches per space group.

    OMP_NUM_THREADS=1 python benchmarks/csp_rms_breakdown.py --pipeline checkpoints/crystal-diffusion-perov5 \
        --targets 300 --k 4 --steps 200 --seed 0 --threads 1 --save /tmp/csp_300x4.json

samples ``--k`` structures for each of ``--targets`` test compositions (the seeded subset
``benchmarks/bench_diffusion.py`` uses, so its k=1 figures are comparable), or reads the per-target
result back with ``--load`` (a file ``--save`` wrote), matches them with
``hfmat.evaluation.csp_metrics`` (StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)) and prints:

- the histogram of the first candidate's RMS over the matched targets (the k=1 RMSE is its mean);
- per space group of the reference (pymatgen's SpacegroupAnalyzer, symprec 0.1): targets, k=1 match
  rate and RMSE, the share of k=1 matches looser than ``--loose`` and, over all k candidates, the
  share of targets with any match;
- the k=1 RMSE the same matches would have without the loose ones (what the loose tail costs).

Nothing here is a test: it is the measurement behind the CSP paragraph of the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diffusion import load_targets  # noqa: E402  (the same seeded subset of compositions)

REPO = Path(__file__).resolve().parents[1]
BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default=str(REPO / "checkpoints" / "crystal-diffusion-perov5"))
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test")
    p.add_argument("--targets", type=int, default=300)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--loose", type=float, default=0.2, help="an RMS above this is a loose match")
    p.add_argument("--save", default=None, help="write the per-target rows (JSON)")
    p.add_argument("--load", default=None, help="read rows --save wrote instead of sampling")
    return p.parse_args(argv)


def breakdown(rows: list[dict], loose: float = 0.2) -> dict:
    """Figures from rows ``{"space_group": int, "rms": [rms or None per candidate]}``."""
    k1 = [r["rms"][0] for r in rows if r["rms"] and r["rms"][0] is not None]
    tight = [x for x in k1 if x <= loose]
    groups = defaultdict(list)
    for r in rows:
        groups[r["space_group"]].append(r)
    per_group = []
    for sg, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        m = [r["rms"][0] for r in rs if r["rms"] and r["rms"][0] is not None]
        per_group.append(
            {
                "space_group": sg,
                "targets": len(rs),
                "match_k1": 100 * len(m) / len(rs),
                "rmse_k1": float(np.mean(m)) if m else None,
                "loose_k1": 100 * sum(x > loose for x in m) / len(m) if m else None,
                "match_any": 100 * sum(any(x is not None for x in r["rms"]) for r in rs) / len(rs),
            }
        )
    return {
        "targets": len(rows),
        "matched_k1": len(k1),
        "rmse_k1": float(np.mean(k1)) if k1 else None,
        "histogram": dict(
            zip([f"{a}-{b}" for a, b in zip(BINS, BINS[1:])], np.histogram(k1, bins=BINS)[0].tolist())
        ),
        "loose_k1": len(k1) - len(tight),
        "rmse_k1_without_loose": float(np.mean(tight)) if tight else None,
        "per_space_group": per_group,
    }


def sample_rows(args) -> list[dict]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.evaluation import csp_metrics

    refs, ids = load_targets(args)
    pipe = CrystalDiffusionPipeline.from_pretrained(args.pipeline)
    out = pipe(
        compositions=[s.composition for s in refs],
        num_samples=args.k,
        num_inference_steps=args.steps,
        generator=torch.Generator().manual_seed(args.seed),
        batch_size=args.batch_size,
    )
    cands = [out.structures[i * args.k : (i + 1) * args.k] for i in range(len(refs))]
    m = csp_metrics(cands, refs, k=args.k, progress=False)
    return [
        {
            "material_id": mid,
            "space_group": SpacegroupAnalyzer(ref, symprec=0.1).get_space_group_number(),
            "rms": [c["rms"] for c in t["candidates"]],
        }
        for mid, ref, t in zip(ids, refs, m["per_target"])
    ]


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = json.loads(Path(args.load).read_text()) if args.load else sample_rows(args)
    if args.save:
        Path(args.save).write_text(json.dumps(rows))
    b = breakdown(rows, args.loose)
    rmse = f"{b['rmse_k1']:.4f}" if b["rmse_k1"] is not None else "-"
    print(f"{b['targets']} targets, {b['matched_k1']} matched at k=1, RMSE {rmse}")
    print("k=1 RMS histogram of the matches:", b["histogram"])
    without = b["rmse_k1_without_loose"]
    print(
        f"{b['loose_k1']} k=1 matches looser than {args.loose}; without them the k=1 RMSE would be "
        + (f"{without:.4f}" if without is not None else "-")
    )
    print("| space group | targets | k=1 match % | k=1 RMSE | loose % of k=1 matches | any of k matched % |")
    print("|---|---|---|---|---|---|")
    for g in b["per_space_group"]:
        r = f"{g['rmse_k1']:.3f}" if g["rmse_k1"] is not None else "-"
        loose = f"{g['loose_k1']:.0f}" if g["loose_k1"] is not None else "-"
        print(
            f"| {g['space_group']} | {g['targets']} | {g['match_k1']:.1f} | {r} | {loose} | {g['match_any']:.1f} |"
        )
    return b


if __name__ == "__main__":
    main()
