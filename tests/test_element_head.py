"""Element guidance (hfmat.diffusion.element_head): the optional head of a text pipeline, how the
pipeline weights atom-type draws with it, its errors, saving and loading, and its training script."""

from __future__ import annotations

import json

import pytest
import torch
from scripts import load_script
from test_text_diffusion import _write_crystals, _write_tower

from hfmat.diffusion import CrystalDiffusionPipeline, PipelineInputError, TextElementHead

STEPS = 4
TEXT = [{"name": "text", "kind": "text", "dim": 16, "pooling": "mean"}]


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    """A saved untrained text pipeline (one-atom cells, mean-pooled text condition) and its tower."""
    from tiny import tiny_denoiser
    from transformers import AutoModel, AutoTokenizer

    from hfmat.diffusion import D3PMScheduler, WrappedNormalScheduler, lattice_scheduler

    root = tmp_path_factory.mktemp("element-head")
    tower = _write_tower(root / "tower")
    pipe = CrystalDiffusionPipeline(
        denoiser=tiny_denoiser(True, 1, conditions=TEXT, elements=["Cu", "W"]),
        lattice_scheduler=lattice_scheduler(),
        coord_scheduler=WrappedNormalScheduler(corrector_steps=0),
        type_scheduler=D3PMScheduler(),
        text_encoder=AutoModel.from_pretrained(tower / "text_encoder"),
        tokenizer=AutoTokenizer.from_pretrained(tower / "tokenizer"),
    )
    pipe.save_pretrained(root / "pipe")
    (root / "pipe" / "training_summary.json").write_text('{"config": {}}\n')  # as a training run leaves
    return root


def _load(folder):
    pipe = CrystalDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _head_for(element: str, pooling: str = "mean") -> TextElementHead:
    """A head that says every prompt's crystal holds ``element`` and nothing else (bias only)."""
    from pymatgen.core import Element

    head = TextElementHead(dim=16, hidden_dim=8, pooling=pooling)
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        head.mlp[-1].bias.fill_(-30.0)
        head.mlp[-1].bias[Element(element).Z] = 30.0
    return head.eval()


def _elements(pipe, **kwargs):
    out = pipe(
        prompt=["Cu", "W"],
        num_samples=8,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    return [str(site.specie) for s in out.structures for site in s]


def test_the_head_steers_every_draw_and_weight_zero_is_the_pipeline_without_it(text_folder):
    plain = _load(text_folder / "pipe")
    without = _elements(plain)
    assert set(without) == {"Cu", "W"}  # the untrained denoiser draws both

    plain.register_modules(element_head=_head_for("W"))
    assert _elements(plain) == ["W"] * 16  # weight 1 by default with a prompt
    assert _elements(plain, element_guidance=0) == without  # off: exactly the pipeline without the head
    plain.register_modules(element_head=_head_for("Cu"))
    assert _elements(plain, element_guidance=2.0) == ["Cu"] * 16
    # no prompt: unconditional sampling, the head unused
    out = plain(num_samples=16, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))
    assert {str(site.specie) for s in out.structures for site in s} == {"Cu", "W"}


def test_the_head_is_saved_as_a_component_and_old_folders_load_without_it(text_folder, tmp_path):
    pipe = _load(text_folder / "pipe")
    assert pipe.element_head is None  # saved before the head existed in it
    pipe.register_modules(element_head=_head_for("W"))
    pipe.save_pretrained(tmp_path / "with-head")
    index = json.loads((tmp_path / "with-head" / "model_index.json").read_text())
    assert index["element_head"] == ["hfmat.diffusion.element_head", "TextElementHead"]
    again = _load(tmp_path / "with-head")
    assert isinstance(again.element_head, TextElementHead)
    assert _elements(again) == ["W"] * 16


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"element_guidance": -1.0}, "finite number >= 0"),
        ({"element_guidance": float("nan")}, "finite number >= 0"),
        ({"element_guidance": "1"}, "must be a number"),
    ],
)
def test_bad_element_guidance_is_a_clear_error(text_folder, kwargs, message):
    pipe = _load(text_folder / "pipe")
    pipe.register_modules(element_head=_head_for("W"))
    with pytest.raises(PipelineInputError, match=message):
        pipe(prompt="W", num_inference_steps=STEPS, **kwargs)


def test_element_guidance_needs_a_head_and_a_prompt_and_the_same_pooling(text_folder):
    pipe = _load(text_folder / "pipe")
    with pytest.raises(PipelineInputError, match="this one has none: training/train_element_head.py"):
        pipe(prompt="W", element_guidance=1.0, num_inference_steps=STEPS)
    pipe.register_modules(element_head=_head_for("W"))
    with pytest.raises(PipelineInputError, match="needs a prompt"):
        pipe(num_samples=2, element_guidance=1.0, num_inference_steps=STEPS)
    pipe.register_modules(element_head=_head_for("W", pooling="pooler"))
    with pytest.raises(PipelineInputError, match="reads pooler-pooled embeddings"):
        pipe(prompt="W", num_inference_steps=STEPS)


def test_train_element_head_learns_the_elements_and_writes_a_pipeline(text_folder, tmp_path):
    script = load_script("training/train_element_head.py")
    crystals = _write_crystals(tmp_path / "cu_w.csv")
    out = tmp_path / "out"
    report = script.main(
        [
            "--pipeline", str(text_folder / "pipe"), "--dataset", str(crystals), "--split", "train",
            "--holdout", "8", "--epochs", "150", "--batch-size", "8", "--hidden-dim", "16", "--lr", "1e-2",
            "--styles", "text_composition", "text_system", "--out", str(out),
        ]
    )  # fmt: skip
    assert report["train_crystals"] == 24 and report["holdout_crystals"] == 8
    assert report["holdout_exact_element_set"] == {"text_composition": 1.0, "text_system": 1.0}
    assert json.loads((out / "element_head" / "training.json").read_text())["pooling"] == "mean"
    assert (out / "training_summary.json").read_text() == '{"config": {}}\n'  # the record travels along
    # the folder it was loaded from is no fact of the model: not recorded in the saved index
    assert "_name_or_path" not in json.loads((out / "model_index.json").read_text())
    pipe = _load(out)
    assert pipe.element_head.config.pooling == "mean"
    # the trained head alone picks each prompt's element
    assert _elements(pipe) == ["Cu"] * 8 + ["W"] * 8
    # the card says what the head is and how well it reads held-out descriptions
    from hfmat.diffusion.card import write_model_card

    card = write_model_card(out).read_text()
    assert "Element guidance: the pipeline's `element_head`" in card
    assert "composition 100.0 %, system 100.0 % of the descriptions" in card
    with pytest.raises(SystemExit):  # an existing --out is refused before any work
        script.main(["--pipeline", str(text_folder / "pipe"), "--out", str(out)])


def test_cli_element_guidance(text_folder, tmp_path, capsys):
    from hfmat.cli import main

    pipe = _load(text_folder / "pipe")
    pipe.register_modules(element_head=_head_for("W"))
    pipe.save_pretrained(tmp_path / "with-head")
    base = ["diffuse", "--steps", str(STEPS), "--prompt", "Cu", "-n", "4"]
    assert main([*base, "--model", str(tmp_path / "with-head"), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [r["formula"] for r in summary["files"]] == ["W"] * 4  # the head outweighs the denoiser
    assert summary["element_guidance"] == 1.0
    capsys.readouterr()
    assert main([*base, "--model", str(text_folder / "pipe"), "--element-guidance", "1"]) == 2
    assert "--element-guidance needs a pipeline with an element_head" in capsys.readouterr().err


def test_exact_set_rate_needs_every_element_and_no_other():
    from hfmat.diffusion.element_head import exact_set_rate

    targets = torch.zeros(3, 6)
    targets[:, [1, 2]] = 1.0  # every row: elements 1 and 2
    scores = torch.tensor(
        [
            [0, 5, 4, 1, 0, 0],  # top 2 = {1, 2}: exact
            [0, 5, 1, 4, 0, 0],  # top 2 = {1, 3}: one wrong
            [0, 3, 3.5, 0, 0, 4],  # top 2 = {5, 2}: one wrong
        ],
        dtype=torch.float,
    )
    assert exact_set_rate(scores, targets) == pytest.approx(1 / 3)
