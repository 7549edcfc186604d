"""Rejection-sampled training data for a CIF language model: rejection-sampling fine-tuning.

    python training/make_rft_data.py --model cif-gpt2-perov5 --reference perov_5:val \
        --samples 2 --max-attempts 8 --temperature 1.0 --out runs/rft_perov5/data.csv

For each row of ``--reference`` (its cell composition, the prompt ``hfmat generate --reference``
uses) the model writes ``--samples`` CIFs with ``generate_cifs(max_attempts=...)``: an invalid draw
is drawn again, up to ``--max-attempts`` times. The valid samples are written as a CSV
(``material_id``, ``cif``: the P1 CIF of each sample) that ``train_cif_lm.py`` trains on
(``dataset: <the csv>``); fine-tuning the model on them is expert iteration (ReST, Llama 2's
rejection-sampling fine-tuning): the model is fitted to its own distribution restricted to valid
CIFs, the distribution that GRPO with a validity reward and a KL penalty to the model aims at.
Samples still invalid after the last draw are counted in ``<out>.json`` beside the CSV, never
written. docs/reward_guidance.md has the measured run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="CIF LM: a shipped name, a folder or a repo id")
    p.add_argument("--reference", required=True, help="DATASET:SPLIT (e.g. perov_5:val) or a path")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the benchmark's CSVs (default: ../shared/data/NAME, as hfmat generate)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N rows of --reference")
    p.add_argument("--samples", type=int, default=2, help="valid CIFs wanted per prompt (default 2)")
    p.add_argument("--max-attempts", type=int, default=8, help="draws per sample at most (default 8)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="the CSV to write (a .json summary goes beside it)")
    args = p.parse_args(argv)
    for key in ("samples", "max_attempts", "batch_size"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.temperature <= 0:
        p.error("--temperature must be > 0: rejection sampling needs random draws")
    from hfmat.evaluation.io import split_source

    if split_source(args.reference)[1] is None:
        p.error(
            f"--reference {args.reference}: name the split (e.g. perov_5:val), never train on test by default"
        )
    if Path(args.out).exists():
        p.error(f"--out {args.out} exists; choose a new file")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.cli.reference import reference_prompts
    from hfmat.hub import load, resolve
    from hfmat.lm import generate_cifs

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = resolve(args.model)
    model, tokenizer = load(AutoModelForCausalLM, folder), load(AutoTokenizer, folder)
    ids, prompts = map(list, zip(*reference_prompts(args.reference, args.data_dir, args.limit)))
    started = time.perf_counter()
    samples = generate_cifs(
        model,
        tokenizer,
        compositions=prompts,
        num_samples=args.samples,
        temperature=args.temperature,
        top_k=args.top_k,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=True,
        max_attempts=args.max_attempts,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = [(i, s) for i, s in enumerate(samples) if s.valid]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["material_id", "cif"])
        writer.writeheader()
        for i, sample in kept:
            writer.writerow({"material_id": f"{ids[i // args.samples]}-rft{sample.index}", "cif": sample.cif})
    summary = {
        "model": args.model,
        "reference": args.reference,
        "prompts": len(prompts),
        "samples_per_prompt": args.samples,
        "max_attempts": args.max_attempts,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "seed": args.seed,
        "written": len(kept),
        "invalid_after_last_draw": len(samples) - len(kept),
        "valid_first_draw": sum(s.valid_at_first_draw for s in samples),
        "draws": sum(s.attempts for s in samples),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
