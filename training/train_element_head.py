"""Train the element head of a text-conditioned pipeline (hfmat.diffusion.element_head).

    OMP_NUM_THREADS=1 python training/train_element_head.py --pipeline crystal-diffusion-perov5-text \
        --dataset perov_5 --split val --out runs/perov5_text_element_head

Every crystal of ``--split`` (of each ``--dataset``) is described in each style (hfmat.data.descriptions; ``--styles``) and
each description embedded by the pipeline's text encoder, pooled as its denoiser's text condition
pools it; a :class:`TextElementHead` learns the crystal's element set from the embedding (one
sigmoid per element, binary cross-entropy, Adam on mini-batches with a cosine schedule). ``--holdout`` crystals (all their
descriptions) are kept out of training and scored after it: per style, the share whose top-k
elements (k: the crystal's number of elements) are exactly its elements. ``--out`` is a copy of the
pipeline with the head as its ``element_head`` component (its card and training record copied unchanged; the head's
figures in element_head/training.json), so ``pipe(prompt=...)`` uses it (``element_guidance``).
The test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--pipeline", required=True, help="a text-conditioned pipeline: folder, shipped name or repo id"
    )
    p.add_argument(
        "--dataset",
        nargs="+",
        default=["perov_5"],
        help="hfmat dataset names or CSV/parquet paths (several: their rows together)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the benchmark's folder of CSVs (default: ../shared/data)",
    )
    p.add_argument("--split", default="val", help="the split to train on (never test by default)")
    p.add_argument("--styles", nargs="+", default=None, help="description columns (default: every style)")
    p.add_argument("--holdout", type=int, default=300, help="crystals kept out for the figures")
    p.add_argument("--hidden-dim", type=int, default=256)
    p.add_argument("--epochs", type=int, default=100, help="passes over the training descriptions")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="the pipeline folder to write (must not exist)")
    args = p.parse_args(argv)
    if Path(args.out).exists():
        p.error(f"--out {args.out} exists; choose a new folder")
    if min(args.holdout, args.epochs, args.hidden_dim, args.batch_size) < 1:
        p.error("--holdout, --epochs, --hidden-dim and --batch-size must be at least 1")
    return args


def element_targets(formulas):
    """Multi-hot [len(formulas), NUM_ATOM_TYPES]: 1 at the atomic number of every element."""
    import torch
    from pymatgen.core import Composition

    from hfmat.diffusion.denoiser import NUM_ATOM_TYPES

    y = torch.zeros(len(formulas), NUM_ATOM_TYPES)
    for i, formula in enumerate(formulas):
        for element in Composition(formula):
            y[i, element.Z] = 1.0
    return y


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F

    from hfmat.data import load_crystal_dataset
    from hfmat.data.descriptions import TEXT_COLUMNS, add_descriptions
    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.diffusion.element_head import TextElementHead, exact_set_rate
    from hfmat.diffusion.text import embed_texts, text_conditions, text_pooling
    from hfmat.hub import resolve

    if args.threads:
        torch.set_num_threads(args.threads)
    source = resolve(args.pipeline)
    pipe = CrystalDiffusionPipeline.from_pretrained(source)
    if pipe.text_encoder is None or not text_conditions(pipe.denoiser):
        raise SystemExit(
            f"{args.pipeline}: not a text-conditioned pipeline (no text encoder or text condition)"
        )
    styles = args.styles or list(TEXT_COLUMNS)
    unknown = [s for s in styles if s not in TEXT_COLUMNS]
    if unknown:
        raise SystemExit(f"--styles {unknown}: not description columns ({', '.join(TEXT_COLUMNS)})")
    formulas, texts = [], {s: [] for s in styles}
    for dataset in args.dataset:
        data_dir = args.data_dir
        if data_dir is None and not Path(dataset).exists():
            data_dir = str(Path(__file__).resolve().parents[2] / "shared" / "data")
        splits = load_crystal_dataset(dataset, data_dir=data_dir)
        if args.split not in splits:
            raise SystemExit(f"--split {args.split}: {dataset} has {list(splits)}")
        rows = add_descriptions(splits[args.split])
        formulas += rows["formula"]
        for s in styles:
            texts[s] += rows[s]
    if len(formulas) <= args.holdout:
        raise SystemExit(
            f"{args.split} has {len(formulas)} crystals: fewer than --holdout {args.holdout} + 1"
        )

    pooling = text_pooling(pipe.denoiser)
    targets = element_targets(formulas)
    embeddings = {
        s: embed_texts(pipe.text_encoder, pipe.tokenizer, texts[s], pooling=pooling) for s in styles
    }
    order = torch.randperm(len(formulas), generator=torch.Generator().manual_seed(args.seed))
    held, train = order[: args.holdout], order[args.holdout :]
    x = torch.cat([embeddings[s][train] for s in styles])
    y = targets[train].repeat(len(styles), 1)

    torch.manual_seed(args.seed)
    dim = int(embeddings[styles[0]].shape[1])
    head = TextElementHead(dim=dim, hidden_dim=args.hidden_dim, pooling=pooling)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    started = time.perf_counter()
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(args.seed)
    steps = args.epochs * -(-len(x) // args.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in tqdm(range(args.epochs), desc="element head"):
        for batch in torch.randperm(len(x), generator=generator).split(args.batch_size):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(head(x[batch]), y[batch])
            loss.backward()
            opt.step()
            schedule.step()
    head.eval()
    with torch.no_grad():
        figures = {s: exact_set_rate(head(embeddings[s][held]), targets[held]) for s in styles}
    report = {
        "pipeline": args.pipeline,
        "dataset": "+".join(args.dataset),
        "split": args.split,
        "styles": styles,
        "pooling": pooling,
        "train_crystals": len(train),
        "holdout_crystals": len(held),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "hidden_dim": args.hidden_dim,
        "final_train_loss": round(loss.item(), 5),
        "holdout_exact_element_set": {s: round(v, 4) for s, v in figures.items()},
        "wall_s": round(time.perf_counter() - started, 1),
        "command": "python " + " ".join(["training/train_element_head.py", *(argv or sys.argv[1:])]),
    }
    for s, v in figures.items():
        print(f"{s}: exact element set of {v:.1%} of {len(held)} held-out crystals")

    out = Path(args.out)
    pipe.register_modules(element_head=head)
    pipe.save_pretrained(out)
    for extra in sorted(source.iterdir()):  # the card, the training record: what the save does not write
        if extra.is_file() and (extra.name == "README.md" or not (out / extra.name).exists()):
            shutil.copy(extra, out / extra.name)
    (out / "element_head" / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
