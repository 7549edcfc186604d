"""Crystal CLIP best-of-N (hfmat.text.rerank): similarities of samples to their prompt, each prompt's
samples best first, the best K kept; benchmarks/bench_text_rerank.py's options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scripts import load_script

from hfmat.text import CrystalCLIP, clip_similarity, keep_top, rerank

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def clip():
    return CrystalCLIP.from_pretrained("crystal-clip-perov5")


@pytest.fixture(scope="module")
def srtio3_and_bazro3():
    from pymatgen.core import Structure

    srtio3 = Structure.from_file(EXAMPLES / "SrTiO3_perovskite.cif")
    bazro3 = srtio3.copy()
    bazro3.replace_species({"Sr": "Ba", "Ti": "Zr"})
    return srtio3, bazro3


def test_rerank_orders_each_prompts_samples_by_similarity_and_keeps_the_best():
    similarity = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.7, 0.2])  # two prompts, three samples each
    order = rerank(similarity, 3)
    assert order == [1, 2, 0, 3, 4, 5]  # within a prompt only; a tie keeps the drawn order
    samples = ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert keep_top(samples, order, 3, 1) == ["a1", "b0"]
    assert keep_top(samples, order, 3, 2) == ["a1", "a2", "b0", "b1"]
    assert keep_top(samples, list(range(6)), 3, 2) == ["a0", "a1", "b0", "b1"]  # first drawn


def test_the_shipped_clip_ranks_the_prompts_composition_first(clip, srtio3_and_bazro3):
    """The same perovskite cell as SrTiO3 and as BaZrO3: each prompt prefers its own composition."""
    srtio3, bazro3 = srtio3_and_bazro3
    for prompt, first in (("SrTiO3, a cubic crystal", 0), ("BaZrO3", 1)):
        similarity = clip_similarity(clip, prompt, [srtio3, bazro3])
        assert similarity.shape == (2,) and similarity.abs().max() <= 1 + 1e-5
        assert rerank(similarity, 2)[0] == first, (prompt, similarity)
    # one prompt per structure: the same values as one prompt at a time
    both = clip_similarity(clip, ["SrTiO3", "SrTiO3", "BaZrO3", "BaZrO3"], [srtio3, bazro3] * 2)
    assert torch.allclose(both[:2], clip_similarity(clip, "SrTiO3", [srtio3, bazro3]), atol=1e-5)
    assert torch.allclose(both[2:], clip_similarity(clip, "BaZrO3", [srtio3, bazro3]), atol=1e-5)
    assert rerank(both, 2) == [0, 1, 3, 2]
    assert keep_top(["SrTiO3 cell", "BaZrO3 cell"] * 2, rerank(both, 2), 2, 1) == [
        "SrTiO3 cell",
        "BaZrO3 cell",
    ]


def test_bad_input_is_a_clear_error(clip, srtio3_and_bazro3):
    with pytest.raises(ValueError, match="got 3 prompts for 2 structures"):
        clip_similarity(clip, ["a", "b", "c"], list(srtio3_and_bazro3))
    with pytest.raises(ValueError, match="5 samples do not split into prompts of 2"):
        rerank(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="keep must be between 1 and the 3 samples per prompt, got 4"):
        keep_top(list("abcdef"), list(range(6)), 3, 4)


def test_keep_must_fit_the_candidates():
    rr = load_script("benchmarks/bench_text_rerank.py")
    with pytest.raises(SystemExit):
        rr.parse_args(["--pipeline", "p", "--candidates", "4", "--keep", "5"])
