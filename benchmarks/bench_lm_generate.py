"""Generation speed of hfmat's batched, KV-cached sampling versus a one-prompt-at-a-time loop that
re-feeds the whole context for every token (how the original CrystaLLM sampler works), on the same
model, prompts and seeds; plus training tokens/s on this machine.

    python benchmarks/bench_lm_generate.py --model checkpoints/cif-gpt2-perov5 --num-structures 64

Both samplers use temperature 1 and top-k 10 and stop at <eos>; neither parses the output (the
figure is generation only). Prints structures/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="checkpoints/cif-gpt2-perov5")
    p.add_argument("--compositions", nargs="+", default=["SrTiO3", "KNbO3", "BaZrO3", "LaAlO3"])
    p.add_argument(
        "--num-structures", type=int, default=64, help="structures per sampler (split over compositions)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--naive-structures",
        type=int,
        default=8,
        help="structures for the slow loop (a rate, so fewer are enough; split over compositions)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-steps", type=int, default=5, help="training steps to time (0: skip)")
    p.add_argument("--train-batch", type=int, default=32)
    return p.parse_args(argv)


@torch.no_grad()
def naive_sample(model, prompt_ids: list[int], eos: int, context: int, top_k: int = 10) -> list[int]:
    """One sample, re-running the model on the whole sequence for every new token (no cache)."""
    ids = torch.tensor([prompt_ids])
    while ids.shape[1] < context:
        logits = model(ids, use_cache=False).logits[:, -1, :]
        values, _ = torch.topk(logits, top_k)
        logits[logits < values[:, [-1]]] = float("-inf")
        nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)
        ids = torch.cat([ids, nxt], dim=1)
        if int(nxt) == eos:
            break
    return ids[0].tolist()


def bench_generation(model, tok, args) -> dict:
    from hfmat.lm import CifConstraint, composition_prompt, generate_cifs

    per = max(1, args.num_structures // len(args.compositions))
    n = per * len(args.compositions)
    context = model.config.n_positions
    prompts = [composition_prompt(c) for c in args.compositions]
    encoded = [[tok.bos_token_id] + tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    # warm-up (first calls allocate)
    generate_cifs(
        model, tok, compositions=args.compositions[:1], num_samples=2, validate=False, constrained=False
    )

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    naive_tokens = 0
    naive_n = 0
    for i in range(args.naive_structures):
        ids = encoded[i % len(encoded)]
        out = naive_sample(model, ids, tok.eos_token_id, context)
        naive_tokens += len(out) - len(ids)
        naive_n += 1
    naive_s = time.perf_counter() - t0

    results = {"structures": n, "naive_structures": naive_n, "naive_s": naive_s, "naive_tokens": naive_tokens}
    constraint = CifConstraint(tok)
    for constrained in (False, True):
        if constrained:  # fill the constraint's caches for these compositions first
            generate_cifs(
                model,
                tok,
                compositions=args.compositions,
                num_samples=1,
                validate=False,
                constraint=constraint,
            )
        t0 = time.perf_counter()
        samples = generate_cifs(
            model,
            tok,
            compositions=args.compositions,
            num_samples=per,
            batch_size=args.batch_size,
            seed=args.seed,
            constrained=constrained,
            constraint=constraint,
            validate=False,
        )
        key = "constrained" if constrained else "unconstrained"
        results[f"{key}_s"] = time.perf_counter() - t0
        results[f"{key}_tokens"] = sum(s.num_new_tokens for s in samples)
    return results


def bench_training(model_dir: str, tok, args) -> dict:
    """Optimizer steps of a fresh model with the checkpoint's shape on real canonical CIFs."""
    import csv

    from pymatgen.core import Structure
    from transformers import AutoConfig, GPT2LMHeadModel

    from hfmat.cif import structure_to_cif
    from hfmat.data import CifLMCollator

    csv.field_size_limit(10**9)
    rows = []
    with open(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "perov_5" / "val.csv", newline=""
    ) as f:
        for row, _ in zip(csv.DictReader(f), range(args.train_batch)):
            cif = structure_to_cif(Structure.from_str(row["cif"], fmt="cif"))
            rows.append({"input_ids": tok(cif)["input_ids"] + [tok.eos_token_id]})
    batch = CifLMCollator(tok)(rows)
    model = GPT2LMHeadModel(AutoConfig.from_pretrained(model_dir)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = int(batch["attention_mask"].sum())
    times = []
    for step in range(args.train_steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t0)
    return {"train_tokens_per_s": tokens * len(times) / sum(times), "train_batch_tokens": tokens}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    r = bench_generation(model, tok, args)
    n = r["structures"]
    naive = r["naive_structures"] / r["naive_s"]
    print(
        f"model {args.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
        f"{args.threads} thread(s), {n} structures per sampler, prompts {args.compositions}"
    )
    print(
        f"naive loop (one prompt, full context per token): {naive:8.3f} structures/s  "
        f"({r['naive_tokens'] / r['naive_s']:.0f} tokens/s, {r['naive_s']:.1f}s)"
    )
    for key in ("unconstrained", "constrained"):
        rate = n / r[f"{key}_s"]
        print(
            f"hfmat batched + KV cache, {key:13s} (batch {args.batch_size}): {rate:8.3f} structures/s  "
            f"({r[f'{key}_tokens'] / r[f'{key}_s']:.0f} tokens/s, {r[f'{key}_s']:.1f}s)  ratio {rate / naive:.1f}x"
        )
    if args.train_steps:
        t = bench_training(args.model, tok, args)
        r.update(t)
        print(
            f"training (same shape, fresh weights, bf16 autocast, batch of {args.train_batch} CIFs = "
            f"{t['train_batch_tokens']} tokens): {t['train_tokens_per_s']:.0f} tokens/s"
        )
    return r


if __name__ == "__main__":
    main()
