"""Text-conditioned diffusion (issue 15): the denoiser's text condition, prompts in the pipeline
(`pipe(prompt=...)`, `hfmat diffuse --prompt`) and their errors, the text encoder and tokenizer saved
as pipeline components, and training with a text condition (train_diffusion.py).

One tiny model is trained once per module (about 300 steps on two one-atom crystals, Cu and W, each
described by its formula; the text tower is a small random BertModel with the prose tokenizer), and
the tests read it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from scripts import load_script

from hfmat.diffusion import CrystalDenoiser, CrystalDiffusionPipeline, PipelineInputError
from hfmat.diffusion.denoiser import check_conditions
from hfmat.diffusion.text import embed_texts

REPO = Path(__file__).resolve().parents[1]
TINY_TEXT = REPO / "training" / "configs" / "diffusion_tiny_text.yaml"
STEPS = 3


def _script():
    return load_script("training/train_diffusion.py")


def _write_tower(folder: Path) -> Path:
    """A Crystal-CLIP-like folder (text_encoder/, tokenizer/) holding a small random BertModel; its
    weights are drawn wide (initializer_range 1) so that 'Cu' and 'W' embed apart."""
    from transformers import BertModel

    from hfmat.text import save_prose_tokenizer, text_encoder_config, train_prose_tokenizer

    tok = train_prose_tokenizer(
        ["Cu crystallizes in the cubic Fm-3m space group", "W, a cubic crystal"],
        vocab_size=200,
        min_frequency=1,
    )
    config = text_encoder_config(tok, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    config.initializer_range = 1.0
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder / "text_encoder")
    save_prose_tokenizer(tok, folder / "tokenizer")
    return folder


def _write_crystals(path: Path) -> Path:
    """32 one-atom crystals: fcc Cu and bcc W (primitive cells), alternating, slightly shaken."""
    import numpy as np
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    cu = Structure(Lattice([[0, 1.8, 1.8], [1.8, 0, 1.8], [1.8, 1.8, 0]]), ["Cu"], [[0, 0, 0]])
    w = Structure(Lattice([[-1.6, 1.6, 1.6], [1.6, -1.6, 1.6], [1.6, 1.6, -1.6]]), ["W"], [[0, 0, 0]])
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        s = (w if i % 2 else cu).copy()
        s.translate_sites([0], rng.normal(0, 0.005, 3), frac_coords=True)
        rows.append({"material_id": f"x{i}", "cif": str(CifWriter(s))})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["material_id", "cif"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _train_args(csv_path, tower, out, *sets, steps=300):
    return [
        "--config", str(TINY_TEXT), "--output-dir", str(out),
        "--set", f"dataset={csv_path}", "data_dir=null", "train_split=train", "eval_holdout=4",
        "max_train_samples=null", f"max_steps={steps}", "per_device_batch_size=16", "save_every=1000",
        "eval_every=1000", "log_every=100", f"text_encoder={tower}", "lr=3e-3", "warmup_steps=5",
        "ema_decay=null", "text_columns=[text_composition]", *sets,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """(final pipeline folder, text tower folder, training summary) of the tiny text run."""
    root = tmp_path_factory.mktemp("text-run")
    tower = _write_tower(root / "tower")
    crystals = _write_crystals(root / "cu_w.csv")
    summary = _script().main(_train_args(crystals, tower, root / "run"))
    return root / "run" / "final", tower, summary


@pytest.fixture(scope="module")
def text_pipe(text_run):
    pipe = CrystalDiffusionPipeline.from_pretrained(text_run[0])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _elements(structures) -> list[str]:
    return [str(site.specie) for s in structures for site in s]


# ------------------------------------------------------------------------------- the condition


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"name": "text", "kind": "text"}], "a text condition needs 'dim' >= 1"),
        ([{"name": "text", "kind": "text", "dim": 0}], "a text condition needs 'dim' >= 1"),
        (
            [{"name": "a", "kind": "text", "dim": 4}, {"name": "b", "kind": "text", "dim": 4}],
            "one text condition at most",
        ),
    ],
)
def test_bad_text_condition_configs_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        check_conditions(bad)


def test_with_conditions_adds_a_zero_initialised_text_embedding(tiny_diffusion_pipeline):
    """The adapter that --init-from uses: a text condition added to an unconditional denoiser starts
    at exactly the base model, for any prompt embedding and for none."""
    base = tiny_diffusion_pipeline(True).denoiser
    model = CrystalDenoiser.with_conditions(base, [{"name": "text", "kind": "text", "dim": 6}]).eval()
    g = torch.Generator().manual_seed(1)
    inputs = {
        "atom_types": torch.randint(0, 90, (8,), generator=g),
        "frac_coords": torch.rand(8, 3, generator=g),
        "lattices": torch.eye(3) + 0.1 * torch.randn(2, 3, 3, generator=g),
        "timesteps": torch.tensor([100, 700]),
        "num_atoms": torch.tensor([4, 4]),
    }
    with torch.no_grad():
        ref = base(**inputs)
        for conditions in ({"text": torch.randn(2, 6, generator=g)}, None):
            out = model(**inputs, conditions=conditions)
            assert torch.equal(out.type_logits, ref.type_logits)
            assert torch.equal(out.coord_score, ref.coord_score)
            assert torch.equal(out.lattice_noise, ref.lattice_noise)


# ---------------------------------------------------------------------------------- sampling


def test_prompts_shift_samples_in_a_tiny_trained_model(text_run, text_pipe):
    """After 300 steps on Cu and W described by their formulas, 'Cu' gives mostly Cu and 'W' mostly
    W, from the same seed; dropping the prompt (the null embedding) gives neither all of one."""
    assert text_run[2]["stop_reason"] == "done"
    out = text_pipe(
        prompt=["Cu", "W"], num_samples=32, num_inference_steps=20, generator=torch.Generator().manual_seed(0)
    )
    cu_prompt, w_prompt = _elements(out.structures[:32]), _elements(out.structures[32:])
    assert len(cu_prompt) == len(w_prompt) == 32  # one atom each, the training atom count
    cu_given_cu = cu_prompt.count("Cu") / 32
    cu_given_w = w_prompt.count("Cu") / 32
    assert cu_given_cu > 0.5 > cu_given_w and cu_given_cu - cu_given_w >= 0.35, (cu_prompt, w_prompt)


def test_text_components_are_saved_in_the_pipeline_folder_and_load_with_transformers(
    text_run, text_pipe, tmp_path
):
    from transformers import AutoModel, AutoTokenizer

    final, tower, _ = text_run
    index = json.loads((final / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "BertModel"]
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]
    tok_config = json.loads((final / "tokenizer" / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast" and "local_files_only" not in tok_config
    assert text_pipe.denoiser.config.conditions == [{"name": "text", "kind": "text", "dim": 16}]
    # plain transformers reads the components, and they embed as the tower the run was given
    bert = AutoModel.from_pretrained(final / "text_encoder").eval()
    tok = AutoTokenizer.from_pretrained(final / "tokenizer")
    given = AutoModel.from_pretrained(tower / "text_encoder").eval()
    texts = ["Cu", "W, a cubic crystal"]
    assert torch.equal(embed_texts(bert, tok, texts), embed_texts(given, tok, texts))
    # save -> load keeps the condition and the samples
    text_pipe.save_pretrained(tmp_path / "again")
    again = CrystalDiffusionPipeline.from_pretrained(tmp_path / "again")
    again.set_progress_bar_config(disable=True)
    assert again.denoiser.config.conditions == text_pipe.denoiser.config.conditions

    def run(pipe):
        return pipe(
            prompt="W", num_samples=3, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(2)
        ).structures

    assert [s.as_dict() for s in run(again)] == [s.as_dict() for s in run(text_pipe)]


def _model_inputs(pipe, n=4):
    g = torch.Generator().manual_seed(3)
    return (
        torch.zeros(n, dtype=torch.long),  # every atom masked
        torch.rand(n, 3, generator=g),
        torch.randn(n, 3, 3, generator=g),
        torch.full((n,), 600),
        torch.ones(n, dtype=torch.long),
    )


@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_guidance_combines_the_prompt_and_the_null_branch(text_pipe, scale):
    """scale 1: the denoiser with the prompt's embedding alone; any scale: uncond + s (cond - uncond)
    of the prompt and the null (no prompt) outputs, the atom types on log-probabilities."""
    emb = embed_texts(text_pipe.text_encoder, text_pipe.tokenizer, ["Cu", "W", "Cu", "W"])
    inputs = _model_inputs(text_pipe)
    with torch.no_grad():
        cond = text_pipe.denoiser(*inputs, conditions={"text": emb})
        uncond = text_pipe.denoiser(*inputs)
        got = text_pipe._predict(({"text": emb}, scale), *inputs)
    if scale == 1.0:
        assert torch.equal(got.coord_score, cond.coord_score) and torch.equal(
            got.type_logits, cond.type_logits
        )
    for key in ("lattice_noise", "coord_score", "type_logits"):
        c, u = getattr(cond, key), getattr(uncond, key)
        if key == "type_logits":
            c, u = torch.log_softmax(c, -1), torch.log_softmax(u, -1)
        expected = u + scale * (c - u)
        g = getattr(got, key)
        if key == "type_logits" and scale == 1.0:
            g = torch.log_softmax(g, -1)
        torch.testing.assert_close(g, expected, atol=1e-5, rtol=1e-5)


def test_guidance_scale_one_is_the_default_with_a_prompt(text_pipe):
    def run(**kw):
        return text_pipe(
            prompt=["Cu", "W"],
            num_samples=2,
            num_inference_steps=STEPS,
            generator=torch.Generator().manual_seed(5),
            **kw,
        ).structures

    assert [s.as_dict() for s in run(guidance_scale=1.0)] == [s.as_dict() for s in run()]


def test_num_atoms_with_prompts(text_pipe):
    out = text_pipe(prompt=["Cu", "W"], num_atoms=[1, 2], num_samples=2, num_inference_steps=STEPS)
    assert [len(s) for s in out.structures] == [1, 1, 2, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": ""}, "prompt is empty: describe the crystal"),
        ({"prompt": ["Cu", "  "]}, r"prompt\[1\] is empty"),
        ({"prompt": []}, "prompt is an empty list"),
        ({"prompt": 3}, "prompt must be a string or a list of strings"),
        ({"prompt": "Cu " * 200}, "tokens long; this text encoder reads at most 128"),
        ({"prompt": "Cu", "compositions": ["Cu"]}, "give prompt or compositions, not both"),
        ({"prompt": ["Cu", "W"], "num_atoms": [1, 1, 1]}, "give one count or one per prompt"),
        ({"conditions": {"text": 1.0}}, "is the text condition: pass the description as prompt"),
        ({"guidance_scale": 2.0}, "guidance_scale needs conditions"),
    ],
)
def test_bad_prompts_are_clear_errors(text_pipe, kwargs, message):
    with pytest.raises(PipelineInputError, match=message):
        text_pipe(num_inference_steps=STEPS, **kwargs)


def test_a_pipeline_without_a_text_tower_refuses_a_prompt(tiny_diffusion_pipeline):
    pipe = tiny_diffusion_pipeline(True)
    with pytest.raises(PipelineInputError, match="this pipeline has no text encoder"):
        pipe(prompt="SrTiO3, a cubic crystal", num_inference_steps=STEPS)


# --------------------------------------------------------------------------------------- CLI


def test_cli_prompt(text_run, text_pipe, tmp_path):
    from hfmat.cli import main

    out = tmp_path / "p"
    argv = ["diffuse", "--model", str(text_run[0]), "-n", "2", "--steps", str(STEPS), "--seed", "4"]
    assert main([*argv, "--prompt", "Cu", "--prompt", "W", "--guidance-scale", "2", "--out", str(out)]) == 0
    lib = text_pipe(
        prompt=["Cu", "W"],
        num_samples=2,
        num_inference_steps=STEPS,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(4),
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == ["Cu", "W"] and summary["guidance_scale"] == 2.0
    rows = summary["files"]
    assert [(r["prompt"], r["sample"]) for r in rows] == [("Cu", 0), ("Cu", 1), ("W", 0), ("W", 1)]
    assert [r["formula"] for r in rows] == [s.composition.reduced_formula for s in lib.structures]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prompt", ""], "--prompt is empty"),
        (["--prompt", "Cu", "--prompt", " "], "--prompt #2 is empty"),
        (["--prompt", "Cu " * 200], "this text encoder reads at most 128"),
        (["--prompt", "Cu", "--composition", "Cu"], "give --prompt or --composition, not both"),
    ],
)
def test_cli_prompt_errors_name_the_flag(text_run, capsys, flags, message):
    from hfmat.cli import main

    capsys.readouterr()
    assert main(["diffuse", "--model", str(text_run[0]), "--steps", "2", *flags]) == 2
    assert message in capsys.readouterr().err


def test_cli_prompt_on_a_model_without_a_text_tower(tiny_diffusion_pipeline, tmp_path, capsys):
    from hfmat.cli import main

    folder = tmp_path / "plain"
    tiny_diffusion_pipeline(True).save_pretrained(folder)
    capsys.readouterr()
    assert main(["diffuse", "--model", str(folder), "--steps", "2", "--prompt", "Cu"]) == 2
    assert "this pipeline has no text encoder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- training


def test_the_card_of_a_text_pipeline_shows_a_prompt(text_run):
    card = (text_run[0] / "README.md").read_text()
    assert "| `text` | text |" in card and 'prompt="SrTiO3, a cubic crystal"' in card
    assert '--prompt "SrTiO3, a cubic crystal"' in card


def test_training_embeds_each_style_and_draws_one_per_crystal(text_run):
    """Every description style is embedded once per crystal ([styles, dim] per row) and each step
    takes one style per crystal, drawn from the checkpointed noise generator."""
    script = _script()
    final, tower, _ = text_run
    crystals = final.parents[1] / "cu_w.csv"
    argv = _train_args(crystals, tower, final.parents[1] / "unused", "text_columns=null")
    cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
    train, _, _ = script.build_datasets(cfg)
    row = train[0]
    assert len(row["text"]) == 3 and len(row["text"][0]) == 16  # three styles, the tower's width
    components = script.build_components(cfg, train)
    collate = script.TextEmbeddingCollator([], ["text"])
    batch = collate([train[i] for i in range(8)])
    assert batch["text"].shape == (8, 3, 16)
    drawn = script.draw_text_styles(batch, components, torch.Generator().manual_seed(0))
    assert drawn["text"].shape == (8, 16)
    assert all(any(torch.equal(drawn["text"][i], s) for s in batch["text"][i]) for i in range(8))


def test_training_text_errors(text_run, tmp_path, script_exit):
    script = _script()
    final, tower, _ = text_run
    crystals = final.parents[1] / "cu_w.csv"
    no_encoder = _train_args(crystals, tower, tmp_path / "x", "text_encoder=null", steps=1)
    assert "set text_encoder: to a Crystal CLIP folder" in script_exit(script, no_encoder)
    bad_columns = _train_args(crystals, tower, tmp_path / "x", "text_columns=[text_poem]", steps=1)
    assert "text_columns: ['text_poem'] are not description columns" in script_exit(script, bad_columns)


# --------------------------------------------------------------------------------- benchmark


def test_bench_text_guidance_scores_real_crystals_fully_and_runs_on_the_tiny_model(text_run, tmp_path):
    """The benchmark's scoring gives a crystal's own structure every target its descriptions name;
    on the tiny model it runs end to end and its prompts beat the unconditional pool on composition."""
    from pymatgen.core import Structure

    bench = load_script("benchmarks/bench_text_guidance.py")
    final = text_run[0]
    crystals = final.parents[1] / "cu_w.csv"
    argv = ["--pipeline", str(final), "--dataset", str(crystals), "--split", "train", "--num-prompts", "8"]
    argv += [
        "--samples",
        "8",
        "--steps",
        "20",
        "--styles",
        "text_composition",
        "text_system",
        "--scales",
        "1",
    ]
    rows = bench.load_prompts(bench.parse_args(argv))
    real = [bench.analyse(Structure.from_str(r["cif"], fmt="cif")) for r in rows]
    targets = [bench.targets_of(r) for r in rows]
    own = bench.match_rates(real, targets, ("composition", "elements", "system", "spacegroup"), 1)
    assert own == {"composition": 1.0, "elements": 1.0, "system": 1.0, "spacegroup": 1.0}
    report = bench.main([*argv, "--out", str(tmp_path)])
    assert [(r["style"], r["scale"], r["num_samples"]) for r in report["rows"]] == [
        ("text_composition", 1.0, 64),
        ("text_system", 1.0, 64),
    ]
    first = report["rows"][0]
    assert first["match"]["composition"] > first["unconditional_match"]["composition"]
    saved = json.loads((tmp_path / "text_guidance.json").read_text())
    assert (
        saved["rows"] == report["rows"]
        and "| composition | 1 | 64 |" in (tmp_path / "text_guidance.md").read_text()
    )


def test_bench_text_guidance_gives_each_prompt_its_crystals_atom_count(text_run):
    """``--num-atoms target``: every sample of a prompt (and of an unconditional group) has the count
    given for it, not one drawn from the training distribution."""
    bench = load_script("benchmarks/bench_text_guidance.py")
    args = bench.parse_args(
        ["--pipeline", str(text_run[0]), "--samples", "2", "--steps", "2", "--num-atoms", "target"]
    )
    args.scale = 1.0
    pipe = CrystalDiffusionPipeline.from_pretrained(text_run[0])
    pipe.set_progress_bar_config(disable=True)
    assert [len(s) for s in bench.sample(pipe, args, prompts=["Cu", "W"], atoms=[3, 2])] == [3, 3, 2, 2]
    assert [len(s) for s in bench.sample(pipe, args, count=4, atoms=[2, 3])] == [2, 2, 3, 3]


def test_a_prompt_and_a_property_condition_together(text_run):
    """A denoiser with a scalar and a text condition takes both: each crystal's call carries the
    target value and its prompt's embedding (both dropped in the null half)."""
    from hfmat.diffusion import D3PMScheduler, WrappedNormalScheduler, lattice_scheduler
    from hfmat.diffusion.text import load_text_tower

    encoder, tokenizer = load_text_tower(text_run[1])
    torch.manual_seed(0)
    conditions = [
        {"name": "heat_ref", "kind": "scalar", "mean": 0.0, "std": 1.0},
        {"name": "text", "kind": "text", "dim": 16},
    ]
    denoiser = CrystalDenoiser(
        hidden_dim=16, num_layers=1, num_frequencies=2, time_embed_dim=8, max_atoms=4, conditions=conditions
    ).eval()
    pipe = CrystalDiffusionPipeline(
        denoiser,
        lattice_scheduler(),
        WrappedNormalScheduler(corrector_steps=0),
        D3PMScheduler(),
        encoder,
        tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    seen = []
    hook = denoiser.register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["conditions"]), with_kwargs=True
    )
    try:
        pipe(
            prompt=["Cu", "W"],
            conditions={"heat_ref": 0.5},
            guidance_scale=2.0,
            num_atoms=2,
            num_inference_steps=2,
        )
    finally:
        hook.remove()
    first = seen[0]
    assert first["heat_ref"].tolist() == [0.5] * 4 and first["text"].shape == (4, 16)
    expected = embed_texts(encoder, tokenizer, ["Cu", "W"])
    torch.testing.assert_close(first["text"][:2], expected)


# ----------------------------------------------------------------------------- shipped model


def test_the_shipped_text_pipeline_loads_by_repo_id_and_samples_from_a_prompt(hf_cache, tmp_path):
    """crystal-diffusion-perov5-text: a complete folder with its text tower (plain transformers
    classes), loadable by repo id offline; `hfmat diffuse --prompt` uses it by default (a few
    steps: the plumbing, not the quality; docs/text_guidance.md has the measured figures)."""
    from hfmat import shipped
    from hfmat.cli import main

    folder = shipped.shipped_model(shipped.DIFFUSION_TEXT)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "BertModel"]
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]
    hf_cache(f"hfmat/{shipped.DIFFUSION_TEXT}", folder)
    pipe = CrystalDiffusionPipeline.from_pretrained(f"hfmat/{shipped.DIFFUSION_TEXT}")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.denoiser.config.conditions == [{"name": "text", "kind": "text", "dim": 64, "pooling": "mean"}]
    assert pipe.denoiser.config.condition_every_layer
    out = pipe(prompt="SrTiO3, a cubic crystal", num_samples=2, num_inference_steps=STEPS)
    assert [len(s) for s in out.structures] == [5, 5]  # every Perov-5 cell has 5 atoms
    out_dir = tmp_path / "p"
    assert (
        main(["diffuse", "--prompt", "BaZrO3", "-n", "2", "--steps", str(STEPS), "--out", str(out_dir)]) == 0
    )
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["model"] == shipped.DIFFUSION_TEXT and summary["prompts"] == ["BaZrO3"]


def test_the_shipped_joint_text_pipeline_loads_by_repo_id_and_its_element_head_keeps_prompts_elements(
    hf_cache,
):
    """crystal-diffusion-perov5-carbon24-text: loadable by repo id offline, with its element head;
    a carbon prompt at a carbon cell size gives pure carbon and a perovskite prompt at 5 atoms its
    elements, even in a few steps (the head decides the types; the geometry is not judged here)."""
    from hfmat import shipped

    name = shipped.DIFFUSION_TEXT_JOINT
    hf_cache(f"hfmat/{name}", shipped.shipped_model(name))
    pipe = CrystalDiffusionPipeline.from_pretrained(f"hfmat/{name}")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.element_head is not None and pipe.denoiser.config.max_atoms == 24
    out = pipe(
        prompt=["C, a cubic crystal", "SrTiO3"],
        num_atoms=[8, 5],
        num_samples=2,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(0),
    )
    assert [len(s) for s in out.structures] == [8, 8, 5, 5]
    assert all(s.composition.reduced_formula == "C" for s in out.structures[:2])
    assert all({e.symbol for e in s.composition} <= {"Sr", "Ti", "O"} for s in out.structures[2:])
