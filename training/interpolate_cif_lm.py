"""Weight interpolation of two CIF language models: WiSE-FT, or a fine-tuned model moved back towards
the model it started from.

    python training/interpolate_cif_lm.py --base cif-gpt2-perov5 --tuned cif-gpt2-perov5-rl \
        --alpha 0.5 --out runs/interpolated/a0.5

Every weight becomes ``(1 - alpha) * base + alpha * tuned`` (alpha 0: the base model, 1: the tuned
one), the idea of WiSE-FT (Wortsman et al., CVPR 2022) and of rewarded soups / WARP for policies
fine-tuned with a reward: models fine-tuned from one start lie in one basin, and points between them
trade what the fine-tuning bought (here validity) against what it cost. Both models must have the same
architecture (config), the same parameter names and shapes and the same tokenizer; otherwise nothing
is written and the error names the first difference.

The output is a plain GPT-2 folder (safetensors, the tuned model's tokenizer and generation config)
that ``AutoModelForCausalLM.from_pretrained`` loads, with ``training_summary.json`` (``"method":
"interpolation"``, alpha and both sources) and a short model card. docs/reward_guidance.md has the
measured trade-off.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ARCHITECTURE_KEYS = ("model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the starting model: a shipped name, a folder or a repo id")
    p.add_argument("--tuned", required=True, help="the model fine-tuned from it (same architecture)")
    p.add_argument("--alpha", type=float, required=True, help="weight of --tuned, 0 to 1")
    p.add_argument("--out", required=True, help="the folder to write (must not exist)")
    args = p.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        p.error(f"--alpha must be between 0 and 1, got {args.alpha}")
    if Path(args.out).exists():
        p.error(f"--out {args.out} exists; choose a new folder")
    return args


def _tokenizer_text(folder: Path) -> str:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer.json")
    return path.read_text()


def interpolate_state(base: dict, tuned: dict, alpha: float) -> dict:
    """``(1 - alpha) * base + alpha * tuned`` for every floating-point tensor (computed in float32,
    stored in the tuned tensor's dtype); other tensors are taken from ``tuned`` and must equal
    ``base``'s. ValueError names the first key or shape that differs."""
    import torch

    if base.keys() != tuned.keys():
        only = sorted(set(base) ^ set(tuned))
        raise ValueError(f"the two models have different parameters, e.g. {only[0]!r}")
    out = {}
    for key, t in tuned.items():
        b = base[key]
        if b.shape != t.shape:
            raise ValueError(
                f"parameter {key!r}: shape {tuple(b.shape)} in --base, {tuple(t.shape)} in --tuned"
            )
        if t.is_floating_point():
            out[key] = ((1.0 - alpha) * b.float() + alpha * t.float()).to(t.dtype)
        else:
            if not torch.equal(b, t):
                raise ValueError(f"parameter {key!r} is not floating point and differs between the models")
            out[key] = t.clone()
    return out


def card_text(base: str, tuned: str, alpha: float) -> str:
    return (
        "---\n"
        "library_name: transformers\n"
        "pipeline_tag: text-generation\n"
        "tags:\n- hfmat\n- crystals\n- cif\n- merge\n"
        "---\n\n"
        f"# Interpolation of {tuned} towards {base}\n\n"
        f"Every weight is `{1 - alpha:g} * {base} + {alpha:g} * {tuned}` "
        "(`training/interpolate_cif_lm.py`, WiSE-FT). A plain GPT-2 that "
        "`AutoModelForCausalLM.from_pretrained` loads, with the tokenizer and generation config of "
        f"{tuned}. It has not been evaluated by this script: measure it with "
        "`benchmarks/eval_lm_csp.py` before use (docs/reward_guidance.md has measured points).\n"
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load, resolve
    from hfmat.tokenization import save_tokenizer

    folders = {name: resolve(getattr(args, name)) for name in ("base", "tuned")}
    models = {name: load(AutoModelForCausalLM, folder) for name, folder in folders.items()}
    for key in ARCHITECTURE_KEYS:
        values = [getattr(models[n].config, key, None) for n in ("base", "tuned")]
        if values[0] != values[1]:
            raise SystemExit(f"error: config {key} is {values[0]} in --base, {values[1]} in --tuned")
    if _tokenizer_text(folders["base"]) != _tokenizer_text(folders["tuned"]):
        raise SystemExit("error: --base and --tuned have different tokenizers (tokenizer.json differs)")
    try:
        state = interpolate_state(models["base"].state_dict(), models["tuned"].state_dict(), args.alpha)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    model = models["tuned"]
    model.load_state_dict(state)
    out = Path(args.out)
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(out, tokenizer=load(AutoTokenizer, folders["tuned"]), card=False)
    record = {
        "method": "interpolation",
        "alpha": args.alpha,
        "base": args.base,
        "tuned": args.tuned,
        "command": "python training/interpolate_cif_lm.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    (out / "training_summary.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "README.md").write_text(card_text(args.base, args.tuned, args.alpha))
    print(
        f"wrote {out} (alpha {args.alpha:g}: {1 - args.alpha:g} x {args.base} + {args.alpha:g} x {args.tuned})"
    )
    return record


if __name__ == "__main__":
    main()
