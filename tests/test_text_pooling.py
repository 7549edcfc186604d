"""A text condition's pooling: ``pooler`` (the default, what every shipped text pipeline uses, not
written into its config) or ``mean`` (the mean of the tower's last hidden states over the prompt's
tokens). The pipeline embeds prompts as its denoiser's config says; training embeds the
descriptions the same way."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from test_text_diffusion import _script, _train_args, _write_crystals, _write_tower

from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.diffusion.denoiser import check_conditions
from hfmat.diffusion.text import embed_texts, load_text_tower, text_pooling


def test_the_pooling_is_checked_and_the_default_is_not_written():
    assert check_conditions([{"name": "text", "kind": "text", "dim": 4}]) == [
        {"name": "text", "kind": "text", "dim": 4}
    ]
    assert check_conditions([{"name": "text", "kind": "text", "dim": 4, "pooling": "pooler"}])[0] == {
        "name": "text",
        "kind": "text",
        "dim": 4,
    }
    assert (
        check_conditions([{"name": "text", "kind": "text", "dim": 4, "pooling": "mean"}])[0]["pooling"]
        == "mean"
    )
    with pytest.raises(ValueError, match=r"pooling must be one of \('pooler', 'mean'\), got 'max'"):
        check_conditions([{"name": "text", "kind": "text", "dim": 4, "pooling": "max"}])


def test_mean_pooling_is_the_masked_mean_of_the_token_states(tmp_path):
    encoder, tokenizer = load_text_tower(_write_tower(tmp_path))
    texts = ["Cu", "W crystallizes in the cubic Fm-3m space group"]
    mean = embed_texts(encoder, tokenizer, texts, pooling="mean")
    pooled = embed_texts(encoder, tokenizer, texts)
    for i, text in enumerate(texts):  # each alone: no padding
        enc = tokenizer([text], return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            out = encoder(**enc)
        assert torch.allclose(mean[i], out.last_hidden_state[0].mean(0), atol=1e-5), "padding is left out"
        assert torch.allclose(pooled[i], F.normalize(out.pooler_output[0], dim=-1), atol=1e-5)
    assert not torch.allclose(mean, pooled)
    with pytest.raises(ValueError, match="pooling must be"):
        embed_texts(encoder, tokenizer, texts, pooling="cls")


def test_a_mean_pooled_run_trains_embeds_and_samples_with_its_pooling(tmp_path):
    tower = _write_tower(tmp_path / "tower")
    crystals = _write_crystals(tmp_path / "cu_w.csv")
    script = _script()
    argv = _train_args(
        crystals, tower, tmp_path / "run", "conditions=[{name: text, kind: text, pooling: mean}]", steps=3
    )
    cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
    train, _, _ = script.build_datasets(cfg)
    encoder, tokenizer = load_text_tower(tower)
    options = embed_texts(encoder, tokenizer, ["Cu", "W"], pooling="mean")  # the two composition texts
    for row in train.select(range(4)):
        got = torch.tensor(row["text"][0])
        assert any(torch.allclose(got, o, atol=1e-5) for o in options), "descriptions embedded by mean"
    assert script.main(argv)["stop_reason"] == "done"
    final = tmp_path / "run" / "final"
    config = json.loads((final / "denoiser" / "config.json").read_text())
    assert config["conditions"] == [{"name": "text", "kind": "text", "dim": 16, "pooling": "mean"}]
    pipe = CrystalDiffusionPipeline.from_pretrained(final)
    pipe.set_progress_bar_config(disable=True)
    assert text_pooling(pipe.denoiser) == "mean"
    seen = {}
    original = pipe.denoiser.forward

    def spy(*args, conditions=None, **kwargs):
        seen.setdefault("text", conditions["text"].clone())
        return original(*args, conditions=conditions, **kwargs)

    pipe.denoiser.forward = spy
    pipe(prompt="Cu", num_samples=2, num_inference_steps=2, guidance_scale=1.0)
    want = embed_texts(pipe.text_encoder, pipe.tokenizer, ["Cu"], pooling="mean")[0]
    assert torch.allclose(seen["text"][0], want, atol=1e-5) and torch.allclose(
        seen["text"][1], want, atol=1e-5
    )


def test_init_from_a_pooler_pipeline_with_mean_pooling_records_the_new_pooling(tmp_path, capsys):
    tower = _write_tower(tmp_path / "tower")
    crystals = _write_crystals(tmp_path / "cu_w.csv")
    script = _script()
    assert script.main(_train_args(crystals, tower, tmp_path / "base", steps=2))["stop_reason"] == "done"
    base = tmp_path / "base" / "final"
    assert "pooling" not in json.loads((base / "denoiser" / "config.json").read_text())["conditions"][0]
    mean = "conditions=[{name: text, kind: text, pooling: mean}]"
    argv = [*_train_args(crystals, tower, tmp_path / "ft", mean, steps=2), "--init-from", str(base)]
    assert script.main(argv)["stop_reason"] == "done"
    assert "text pooling pooler -> mean" in capsys.readouterr().out
    tuned = CrystalDiffusionPipeline.from_pretrained(tmp_path / "ft" / "final")
    assert tuned.denoiser.config.conditions[0]["pooling"] == "mean" and text_pooling(tuned.denoiser) == "mean"
    recorded = json.loads((tmp_path / "ft" / "final" / "training_summary.json").read_text())
    assert recorded["config"]["conditions"][0]["pooling"] == "mean"
