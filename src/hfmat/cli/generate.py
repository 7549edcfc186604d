"""``hfmat generate``: sample CIF files from a CIF language model (a folder or a Hub repo id)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="sample CIF files from a CIF language model",
        description="Sample crystal structures as CIF files from a GPT-2 CIF model and check each one.",
    )
    p.add_argument("--model", required=True, help="model folder or Hub repo id (a cached one when offline)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder or repo id (default: the model's)")
    p.add_argument(
        "--composition",
        action="append",
        default=None,
        help="formula to prompt with, e.g. SrTiO3 or Sr1Ti1O3 (repeatable); omit for unconditional samples",
    )
    p.add_argument(
        "--formula-units",
        type=int,
        default=None,
        help="formula units Z per cell (multiplies the reduced formula)",
    )
    p.add_argument(
        "--spacegroup", default=None, help="space-group symbol (Pm-3m) or number (221) to prompt with"
    )
    p.add_argument("-n", "--num-samples", type=int, default=8, help="samples per composition (default 8)")
    p.add_argument("--out", required=True, help="folder for the CIF files and summary.json")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unconstrained", action="store_true", help="turn grammar-constrained decoding off")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from pathlib import Path

    import torch

    from hfmat.lm.generation import generate_cifs
    from hfmat.lm.prompts import PromptError, composition_prompt

    if args.num_samples < 1:
        raise ValueError(f"-n must be at least 1, got {args.num_samples}")
    # check the input before loading anything
    if args.composition:
        for comp in args.composition:
            composition_prompt(comp, args.spacegroup, args.formula_units)
    elif args.spacegroup is not None:
        raise PromptError("--spacegroup needs --composition (the space-group line follows the data_ line)")
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load

    model = load(AutoModelForCausalLM, args.model)
    tokenizer = load(AutoTokenizer, args.tokenizer or args.model)
    samples = generate_cifs(
        model,
        tokenizer,
        compositions=args.composition,
        spacegroup=args.spacegroup,
        num_samples=args.num_samples,
        temperature=args.temperature,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        constrained=not args.unconstrained,
        formula_units=args.formula_units,
        progress=True,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    width = max(len(s.composition or "unconditional") for s in samples)
    print(f"{'#':>4}  {'prompt':{width}s}  {'file':28s}  {'valid':5s}  why")
    for i, s in enumerate(samples):
        name = f"{i:04d}_{s.composition or 'unconditional'}.cif"
        (out / name).write_text(s.text)
        failed = s.validity.failed()
        why = "; ".join(f"{c.name}: {c.reason}" for c in failed) if failed else "all checks passed"
        if not s.finished:
            why = "cut at max_new_tokens; " + why
        formula = s.structure.composition.reduced_formula if s.structure is not None else None
        summary.append(
            {
                "file": name,
                "prompt": s.prompt,
                "valid": s.valid,
                "finished": s.finished,
                "formula": formula,
                "failed_checks": {c.name: c.reason for c in failed},
            }
        )
        print(
            f"{i:4d}  {s.composition or 'unconditional':{width}s}  {name:28s}  {'yes' if s.valid else 'no':5s}  {why}"
        )
    n_valid = sum(s.valid for s in samples)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{n_valid}/{len(samples)} valid; CIFs and summary.json written to {out}")
    return 0
