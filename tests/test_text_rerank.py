"""benchmarks/bench_text_rerank.py: Crystal CLIP best-of-N keeps each prompt's most similar samples."""

from __future__ import annotations

import pytest
import torch
from scripts import load_script


def test_rerank_orders_each_prompts_samples_by_similarity_and_keeps_the_best():
    rr = load_script("benchmarks/bench_text_rerank.py")
    similarity = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.7, 0.2])  # two prompts, three samples each
    order = rr.rerank(similarity, 3)
    assert order == [1, 2, 0, 3, 4, 5]  # within a prompt only; a tie keeps the drawn order
    samples = ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert rr.kept(samples, order, 3, 1) == ["a1", "b0"]
    assert rr.kept(samples, order, 3, 2) == ["a1", "a2", "b0", "b1"]
    assert rr.kept(samples, list(range(6)), 3, 2) == ["a0", "a1", "b0", "b1"]  # first drawn


def test_keep_must_fit_the_candidates():
    rr = load_script("benchmarks/bench_text_rerank.py")
    with pytest.raises(SystemExit):
        rr.parse_args(["--pipeline", "p", "--candidates", "4", "--keep", "5"])
