"""Element guidance for text prompts: which elements does a prompt's crystal contain?

A text-conditioned denoiser reads a prompt only through one embedding added to its timestep
embedding, and learns what that embedding says about the elements from the diffusion loss alone; on
Perov-5 it then places a frequent A-site cation (Ba, La, Sr) where the prompt names a rarer one in
about 4 of 10 samples, though a small network reads the element set from the same embedding for 95 %
of test formulas (benchmarks/probe_text_elements.py). :class:`TextElementHead` is that network, an
optional pipeline component trained directly on "which elements are in this crystal" (multi-label,
one sigmoid per element; training/train_element_head.py). When a prompt is given, the pipeline adds
``element_guidance * log sigmoid(head(prompt))`` to the type logits at every reveal: the product of
the denoiser's distribution and the head's, weighted (guidance with a classifier on x_0 of the atom
types). The head sees only the text embedding, never a parsed formula, so it works for every prompt
style as far as its measured accuracy goes (docs/text_guidance.md).
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn
from torch.nn import functional as F

from hfmat.diffusion.denoiser import NUM_ATOM_TYPES, TEXT_POOLINGS


class TextElementHead(ModelMixin, ConfigMixin):
    """Logits [B, NUM_ATOM_TYPES] (index Z: element of atomic number Z is in the crystal) from a
    prompt's embedding [B, dim], pooled as the denoiser's text condition pools it (``pooling``).

    Args:
        dim: the text embedding's width (the denoiser's text condition ``dim``).
        hidden_dim: width of the one hidden layer.
        pooling: the text embedding's pooling (:data:`TEXT_POOLINGS`); it must equal the denoiser's.
    """

    @register_to_config
    def __init__(self, dim: int = 64, hidden_dim: int = 256, pooling: str = "mean"):
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, NUM_ATOM_TYPES))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.mlp(embeddings.to(self.mlp[0].weight.dtype))

    def log_prior(self, embeddings: torch.Tensor) -> torch.Tensor:
        """log sigmoid of the logits, float32 [B, NUM_ATOM_TYPES]: each element's log-probability of
        being in the crystal (the mask type's entry is never used: the scheduler excludes it)."""
        return F.logsigmoid(self(embeddings).float())


def exact_set_rate(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of rows whose top-k scores (k: the row's number of elements in the multi-hot
    ``targets``) are exactly its elements: how well a head (or a probe) reads a crystal's element set."""
    hits = 0
    for row, y in zip(scores, targets):
        hits += set(row.topk(int(y.sum())).indices.tolist()) == set(y.nonzero().flatten().tolist())
    return hits / max(len(targets), 1)
