"""Retrieval between paired text and crystal embeddings, among a fixed number of candidates."""

from __future__ import annotations

import torch


def retrieval_accuracy(
    text_embeddings: torch.Tensor,
    crystal_embeddings: torch.Tensor,
    *,
    num_candidates: int = 100,
    ks: tuple[int, ...] = (1, 5),
    seed: int = 0,
) -> dict:
    """Top-k accuracy of text -> crystal and crystal -> text retrieval.

    Row i of both tensors is one pair. The pairs are shuffled (``seed``) and cut into blocks of
    ``num_candidates`` (a last, smaller block is dropped); inside a block every text ranks the
    block's crystals by cosine similarity, and the other way round. A query counts as found within
    k when fewer than k wrong candidates score at least as high as its partner (a tie counts
    against it, so constant embeddings score 0, not 100 %). Chance is ``k / num_candidates``.
    """
    if text_embeddings.shape != crystal_embeddings.shape or text_embeddings.dim() != 2:
        raise ValueError(
            f"need two [pairs, dim] tensors of one shape, got {tuple(text_embeddings.shape)} and "
            f"{tuple(crystal_embeddings.shape)}"
        )
    n = text_embeddings.shape[0]
    if n < num_candidates:
        raise ValueError(f"{n} pairs are fewer than num_candidates={num_candidates}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    text = torch.nn.functional.normalize(text_embeddings.float()[order], dim=-1)
    crystal = torch.nn.functional.normalize(crystal_embeddings.float()[order], dim=-1)
    blocks = n // num_candidates
    hits = {f"{d}_top{k}": 0 for d in ("text_to_crystal", "crystal_to_text") for k in ks}
    for b in range(blocks):
        part = slice(b * num_candidates, (b + 1) * num_candidates)
        sim = text[part] @ crystal[part].T  # [texts, crystals]
        for direction, s in (("text_to_crystal", sim), ("crystal_to_text", sim.T)):
            own = s.diagonal().unsqueeze(1)
            wrong = (s >= own).sum(dim=1) - 1  # the partner itself is >= itself
            for k in ks:
                hits[f"{direction}_top{k}"] += int((wrong < k).sum())
    queries = blocks * num_candidates
    out = {key: value / queries for key, value in hits.items()}
    out.update({f"chance_top{k}": k / num_candidates for k in ks})
    out.update(num_candidates=num_candidates, blocks=blocks, queries=queries)
    return out
