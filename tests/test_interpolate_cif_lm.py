"""training/interpolate_cif_lm.py: WiSE-FT weight interpolation of two CIF language models."""

from __future__ import annotations

import json

import pytest
from scripts import load_script


@pytest.fixture(scope="module")
def interp():
    return load_script("training/interpolate_cif_lm.py")


def test_interpolated_weights_lie_between_the_models_and_load_with_transformers(interp, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import resolve

    out = tmp_path / "half"
    record = interp.main(
        ["--base", "cif-gpt2-perov5", "--tuned", "cif-gpt2-perov5-rl", "--alpha", "0.25", "--out", str(out)]
    )
    assert record["method"] == "interpolation" and record["alpha"] == 0.25
    assert json.loads((out / "training_summary.json").read_text()) == record
    merged = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(resolve("cif-gpt2-perov5")).state_dict()
    tuned = AutoModelForCausalLM.from_pretrained(resolve("cif-gpt2-perov5-rl")).state_dict()
    key = "transformer.h.0.attn.c_attn.weight"
    assert not torch.allclose(base[key], tuned[key])
    assert torch.allclose(merged[key], 0.75 * base[key] + 0.25 * tuned[key], atol=1e-6)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok("data_SrTiO3\n")["input_ids"], skip_special_tokens=True) == "data_SrTiO3\n"
    assert "0.75 * cif-gpt2-perov5 + 0.25 * cif-gpt2-perov5-rl" in (out / "README.md").read_text()
    # the tuned model's sampling temperature comes with it
    assert AutoModelForCausalLM.from_pretrained(out).generation_config.temperature == 0.7


def test_alpha_ends_give_back_each_model(interp):
    import torch

    base = {"w": torch.zeros(2, 3), "step": torch.tensor([4])}
    tuned = {"w": torch.ones(2, 3), "step": torch.tensor([4])}
    assert torch.equal(interp.interpolate_state(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(interp.interpolate_state(base, tuned, 1.0)["w"], tuned["w"])
    assert torch.equal(interp.interpolate_state(base, tuned, 0.5)["step"], torch.tensor([4]))


def test_mismatched_models_are_refused_with_the_difference(interp, tmp_path, capsys):
    import torch

    with pytest.raises(ValueError, match="'w': shape \\(2, 3\\) in --base, \\(3, 2\\)"):
        interp.interpolate_state({"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 2)}, 0.5)
    with pytest.raises(ValueError, match="different parameters, e.g. 'v'"):
        interp.interpolate_state({"w": torch.zeros(1)}, {"w": torch.zeros(1), "v": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="not floating point and differs"):
        interp.interpolate_state({"i": torch.tensor([1])}, {"i": torch.tensor([2])}, 0.5)
    # different architectures: nothing written
    out = tmp_path / "x"
    with pytest.raises(SystemExit, match="config n_positions is 384 in --base, 896"):
        interp.main(
            ["--base", "cif-gpt2-perov5", "--tuned", "cif-gpt2-general", "--alpha", "0.5", "--out", str(out)]
        )
    assert not out.exists()
    for alpha in ("-0.1", "1.5"):
        with pytest.raises(SystemExit):
            interp.parse_args(["--base", "a", "--tuned", "b", "--alpha", alpha, "--out", str(out)])
        assert "--alpha must be between 0 and 1" in capsys.readouterr().err
