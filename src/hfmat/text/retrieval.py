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


def _wrong_at_least(sim: torch.Tensor) -> torch.Tensor:
    """Per row of a square similarity block: how many wrong candidates score at least as high as the
    diagonal partner (ties count against the query)."""
    return (sim >= sim.diagonal().unsqueeze(1)).sum(dim=1) - 1


def grouped_retrieval(
    text_embeddings: torch.Tensor, crystal_embeddings: torch.Tensor, groups, *, texts=None
) -> dict:
    """Top-1 retrieval inside groups of pairs (e.g. the crystals that share one composition).

    ``groups`` is a list of index lists into the paired rows; each group of two or more pairs is one
    candidate set: each of its texts ranks its crystals, and each crystal its texts (a tie counts
    against the query). Chance is the mean of ``1 / len(group)`` over queries. With ``texts`` (the
    strings), ``separable`` is the fraction of queries whose text differs from every other text of its
    group: equal texts cannot be told apart, so this bounds text -> crystal top-1 from above; and the
    ``*_distinct`` figures are the same accuracies over only the groups whose texts all differ (where
    the text says how the crystals differ, so a model that reads it can be right every time).
    """
    if text_embeddings.shape != crystal_embeddings.shape or text_embeddings.dim() != 2:
        raise ValueError(
            f"need two [pairs, dim] tensors of one shape, got {tuple(text_embeddings.shape)} and "
            f"{tuple(crystal_embeddings.shape)}"
        )
    groups = [list(g) for g in groups if len(g) >= 2]
    if not groups:
        raise ValueError("grouped_retrieval needs at least one group of two or more pairs")
    text = torch.nn.functional.normalize(text_embeddings.float(), dim=-1)
    crystal = torch.nn.functional.normalize(crystal_embeddings.float(), dim=-1)
    keys = ("text_to_crystal_top1", "crystal_to_text_top1", "chance_top1", "queries", "groups")
    every, distinct = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    separable = 0
    for group in groups:
        index = torch.tensor(group)
        sim = text[index] @ crystal[index].T
        counts = {
            "text_to_crystal_top1": int((_wrong_at_least(sim) < 1).sum()),
            "crystal_to_text_top1": int((_wrong_at_least(sim.T) < 1).sum()),
            "chance_top1": 1,  # len(group) queries, each at 1 / len(group)
            "queries": len(group),
            "groups": 1,
        }
        said = [texts[i] for i in group] if texts is not None else None
        parts = [every, distinct] if said is not None and len(set(said)) == len(said) else [every]
        for part in parts:
            for key in keys:
                part[key] += counts[key]
        if said is not None:
            separable += sum(said.count(t) == 1 for t in said)
    out = {k: every[k] / every["queries"] for k in keys[:3]}
    out.update(groups=every["groups"], queries=every["queries"])
    if texts is not None:
        out["separable"] = separable / every["queries"]
        out["distinct_groups"] = distinct["groups"]
        out["distinct_queries"] = distinct["queries"]
        for k in keys[:3]:
            out[f"{k}_distinct"] = distinct[k] / distinct["queries"] if distinct["queries"] else None
    return out


def attribute_retrieval(
    query_embeddings: torch.Tensor,
    query_labels,
    crystal_embeddings: torch.Tensor,
    crystal_labels,
    *,
    num_candidates: int = 100,
    seed: int = 0,
) -> dict:
    """Retrieval by an attribute many crystals share (a crystal system, a space group).

    Query i names the label of pair i (``query_labels[i]``, e.g. "a cubic crystal" names "cubic").
    The pairs are shuffled (``seed``) and cut into blocks of ``num_candidates`` as in
    :func:`retrieval_accuracy`; each query ranks its block's crystals and counts a hit when the
    crystal it ranks first has the label it names. ``base_rate`` is what a random pick scores: the
    mean, over queries, of the fraction of the block's crystals that have the named label.
    """
    query_labels, crystal_labels = list(query_labels), list(crystal_labels)
    n = crystal_embeddings.shape[0]
    if (
        query_embeddings.shape != crystal_embeddings.shape
        or len(query_labels) != n
        or len(crystal_labels) != n
    ):
        raise ValueError(
            f"need {n} queries, {n} query labels and {n} crystal labels, got {query_embeddings.shape[0]}, "
            f"{len(query_labels)} and {len(crystal_labels)}"
        )
    if n < num_candidates:
        raise ValueError(f"{n} pairs are fewer than num_candidates={num_candidates}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    query = torch.nn.functional.normalize(query_embeddings.float(), dim=-1)
    crystal = torch.nn.functional.normalize(crystal_embeddings.float(), dim=-1)
    hits = base = queries = 0
    for b in range(n // num_candidates):
        block = order[b * num_candidates : (b + 1) * num_candidates]
        labels = [crystal_labels[i] for i in block]
        first = (query[block] @ crystal[block].T).argmax(dim=1).tolist()
        for row, i in enumerate(block):
            hits += labels[first[row]] == query_labels[i]
            base += labels.count(query_labels[i]) / num_candidates
            queries += 1
    return {
        "hit_rate": hits / queries,
        "base_rate": base / queries,
        "num_candidates": num_candidates,
        "queries": queries,
    }
