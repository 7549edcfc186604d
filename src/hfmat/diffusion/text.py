"""Prompts for a text-conditioned diffusion pipeline (docs/text_guidance.md).

A prompt is embedded by the pipeline's text encoder, a plain ``transformers`` ``BertModel`` (the
text tower of Crystal CLIP, :mod:`hfmat.text`), read through its tokenizer: the embedding is the
L2-normalised ``pooler_output``, as Crystal CLIP aligned it with crystals. The denoiser's text
condition (``{"kind": "text", "dim": ...}``) projects it and adds it to the timestep embedding like
any other condition; a sample without a prompt uses the condition's learned null embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from hfmat.diffusion.denoiser import TEXT_POOLINGS
from hfmat.diffusion.inputs import PipelineInputError

EXAMPLE_PROMPT = "SrTiO3, a cubic crystal"


def text_conditions(denoiser) -> list[str]:
    """Names of the denoiser's text conditions (at most one; see :func:`check_conditions`)."""
    specs = getattr(denoiser, "condition_specs", {}) or {}
    return [name for name, spec in specs.items() if spec["kind"] == "text"]


def max_prompt_tokens(text_encoder, tokenizer) -> int:
    """The longest prompt, in tokens with ``[CLS]`` and ``[SEP]``, that the encoder reads whole."""
    limits = [int(text_encoder.config.max_position_embeddings)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 10**9:
        limits.append(model_max)
    return min(limits)


def check_prompts(prompt, tokenizer, max_tokens: int) -> list[str]:
    """``prompt`` (a string or a list of strings) as a list, checked: not empty, no empty string,
    each at most ``max_tokens`` tokens long. Raises PipelineInputError naming the bad prompt."""
    if isinstance(prompt, str):
        prompts, where = [prompt], lambda i: "prompt"
    elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        prompts, where = list(prompt), lambda i: f"prompt[{i}]"
        if not prompts:
            raise PipelineInputError("prompt is an empty list: give at least one description")
    else:
        raise PipelineInputError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
    for i, text in enumerate(prompts):
        if not isinstance(text, str):
            raise PipelineInputError(f"{where(i)} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise PipelineInputError(
                f"{where(i)} is empty: describe the crystal, e.g. {EXAMPLE_PROMPT!r} "
                "(leave prompt out to sample unconditionally)"
            )
        n = len(tokenizer(text)["input_ids"])
        if n > max_tokens:
            raise PipelineInputError(
                f"{where(i)} is {n} tokens long; this text encoder reads at most {max_tokens} "
                "(with [CLS] and [SEP]): shorten it"
            )
    return prompts


@torch.no_grad()
def embed_texts(
    text_encoder, tokenizer, texts: Sequence[str], batch_size: int = 256, pooling: str = "pooler"
) -> torch.Tensor:
    """Float32 embeddings [len(texts), hidden] of the texts, in batches: the L2-normalised
    ``pooler_output`` (``pooling="pooler"``) or the mean of the last hidden states over each text's
    tokens (``"mean"``: every token's state, so the elements a formula names survive; the pooler's
    one [CLS] vector keeps them less well). The encoder is run in eval mode (no dropout) and left in
    the mode it was in."""
    if pooling not in TEXT_POOLINGS:
        raise ValueError(f"pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
    device = text_encoder.device
    was_training = text_encoder.training
    text_encoder.eval()
    out = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                return_tensors="pt",
                return_token_type_ids=False,
            ).to(device)
            result = text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            if pooling == "mean":
                mask = enc["attention_mask"].unsqueeze(-1).float()
                states = result.last_hidden_state.float()
                out.append((states * mask).sum(1) / mask.sum(1).clamp(min=1.0))
            else:
                out.append(F.normalize(result.pooler_output.float(), dim=-1))
    finally:
        text_encoder.train(was_training)
    if not out:
        return torch.empty(0, int(text_encoder.config.hidden_size))
    return torch.cat(out)


def text_pooling(denoiser) -> str:
    """How ``denoiser``'s text condition pools the encoder's output (``pooler`` unless its config
    says otherwise)."""
    specs = getattr(denoiser, "condition_specs", {})
    return next(
        (spec.get("pooling", "pooler") for spec in specs.values() if spec["kind"] == "text"), "pooler"
    )


def load_text_tower(folder):
    """``(text_encoder, tokenizer)`` of a Crystal CLIP folder or a text-conditioned pipeline
    (``text_encoder/`` and ``tokenizer/``), or of a text-encoder repository (a transformers encoder
    with its tokenizer at the top, as ``crystal-text-encoder-perov5``): a path, a shipped name or a
    repo id."""
    from transformers import AutoModel, AutoTokenizer

    from hfmat.hub import resolve

    path = resolve(folder)
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    missing = [sub for sub in ("text_encoder", "tokenizer") if not (path / sub).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no {' or '.join(f'{m}/' for m in missing)} folder; a text encoder comes from a "
            "Crystal CLIP folder, a text-encoder repository or a text-conditioned pipeline"
        )
    encoder = AutoModel.from_pretrained(path / "text_encoder").eval()
    return encoder, AutoTokenizer.from_pretrained(path / "tokenizer")


def save_tokenizer(tokenizer, pipeline_folder) -> None:
    """Rewrite a saved pipeline's ``tokenizer/`` as hfmat's prose tokenizer is saved (the class by
    its public name, no load-time keys: :func:`hfmat.tokenization.build.pin_tokenizer_config`) and
    name that class in model_index.json, so plain transformers reads it as it was."""
    import json
    from pathlib import Path

    from hfmat.tokenization.build import pin_tokenizer_config

    folder = Path(pipeline_folder)
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    pin_tokenizer_config(folder / "tokenizer" / "tokenizer_config.json", bos_only=False)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    if index.get("tokenizer", [None])[0] == "transformers":
        index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
