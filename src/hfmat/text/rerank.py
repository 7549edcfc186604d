"""Best-of-N for text-guided generation: score samples against their prompt with Crystal CLIP and keep
each prompt's most similar ones (docs/text_guidance.md, "Reranking by Crystal CLIP")::

    clip = CrystalCLIP.from_pretrained("crystal-clip-perov5")
    out = pipe(prompt="SrTiO3, a cubic crystal", num_samples=10)
    similarity = clip_similarity(clip, "SrTiO3, a cubic crystal", out.structures)
    best = keep_top(out.structures, rerank(similarity, 10), 10, 2)   # the 2 most similar of 10

Samples are laid out prompt by prompt, as the pipeline returns them: sample j of prompt i is at
``i * per_prompt + j``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def clip_similarity(clip, prompt: str | Sequence[str], structures: Sequence) -> torch.Tensor:
    """Cosine similarity [len(structures)] of each structure's crystal embedding to its prompt's text
    embedding. ``prompt``: one text for all structures, or one per structure (each distinct text is
    embedded once)."""
    structures = list(structures)
    if isinstance(prompt, str):
        prompts = [prompt] * len(structures)
    else:
        prompts = list(prompt)
        if len(prompts) != len(structures):
            raise ValueError(
                f"give one prompt or one per structure: got {len(prompts)} prompts for {len(structures)} structures"
            )
    if not structures:
        return torch.empty(0)
    distinct = list(dict.fromkeys(prompts))
    text = clip.embed_texts(distinct)
    index = torch.tensor([distinct.index(p) for p in prompts], device=text.device)
    crystal = clip.embed_structures(structures)
    return (crystal * text[index]).sum(-1).cpu()


def _check(n: int, per_prompt: int) -> None:
    if per_prompt < 1 or n % per_prompt:
        raise ValueError(f"{n} samples do not split into prompts of {per_prompt} samples each")


def rerank(similarity: torch.Tensor, per_prompt: int) -> list[int]:
    """Sample indices, prompt by prompt, best first: ``similarity[i * per_prompt + j]`` is sample j of
    prompt i; ties keep the drawn order."""
    _check(len(similarity), per_prompt)
    order = []
    for i in range(len(similarity) // per_prompt):
        block = similarity[i * per_prompt : (i + 1) * per_prompt]
        ranked = sorted(range(per_prompt), key=lambda j: (-float(block[j]), j))
        order += [i * per_prompt + j for j in ranked]
    return order


def keep_top(samples: Sequence, order: Sequence[int], per_prompt: int, keep: int) -> list:
    """The first ``keep`` of each prompt's ``per_prompt`` samples in ``order`` (:func:`rerank`'s, or
    ``range(len(samples))`` for the first drawn)."""
    _check(len(order), per_prompt)
    if not 1 <= keep <= per_prompt:
        raise ValueError(f"keep must be between 1 and the {per_prompt} samples per prompt, got {keep}")
    return [samples[order[i * per_prompt + j]] for i in range(len(order) // per_prompt) for j in range(keep)]
