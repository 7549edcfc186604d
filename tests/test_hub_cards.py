"""Cards from model_cards/ templates: metadata, model-index from measured metrics, strict fields."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard

from hfmat.hub import CardError, check_card, citations, eval_results, render_card, templates_dir
from hfmat.hub.tokenizer_card import tokenizer_card
from hfmat.tokenization import build_tokenizer

REPO = Path(__file__).resolve().parents[1]

DATASET_FIELDS = dict(
    pretty_name="Perov-5 (test subset)",
    repo_id="hfmat/perov-5",
    description="Cubic perovskites.",
    splits={"train": 3487, "validation": 300},
    standard_splits=None,
    notes="Trained on val.csv.",
    columns={"material_id": ("string", "id"), "cif": ("string", "canonical CIF")},
    source="CDVAE (MIT).",
    license_note=None,
    target_property="heat_ref",
    limitations="5 atoms only.",
    citation=citations("cdvae"),
)
DATASET_META = {
    "license": "mit",
    "pretty_name": "Perov-5",
    "configs": [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
    ],
}


def test_templates_ship_with_card_data_block():
    names = {p.stem for p in templates_dir().glob("*.md")}
    assert {"dataset", "tokenizer"} <= names
    for name in ("dataset", "tokenizer"):
        assert (templates_dir() / f"{name}.md").read_text().startswith("---\n{{ card_data }}\n---\n")


def test_dataset_card_renders_metadata_and_snippet():
    card = render_card("dataset", metadata=DATASET_META, **DATASET_FIELDS)
    assert isinstance(card, DatasetCard)
    again = DatasetCard(str(card))
    data = again.data.to_dict()
    assert data["license"] == "mit"
    assert data["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    assert data["hfmat"]["version"]  # versions recorded for load-failure diagnostics
    assert 'snapshot_download("hfmat/perov-5", repo_type="dataset")' in again.text
    assert "| validation | 300 |" in again.text
    assert "Xie, Tian" in again.text  # CDVAE citation
    assert "Trained on val.csv." in again.text
    assert "| `cif` | string | canonical CIF |" in again.text and "`heat_ref`" in again.text
    assert "5 atoms only." in again.text


def test_model_index_built_from_metrics(tmp_path):
    template = tmp_path / "m.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ model_name }}\n\n{{ citations.diffcsp }}\n")
    results = eval_results(
        {"match_rate@1": 41.25, "rmse@1": 0.0912},
        task_type="crystal-structure-prediction",
        dataset_name="Perov-5",
        dataset_type="perov_5",
        dataset_split="test",
    )
    card = render_card(
        template,
        metadata={"license": "mit", "library_name": "diffusers", "tags": ["hfmat"]},
        eval_results=results,
        model_name="crystal-diffusion-perov5",
    )
    assert isinstance(card, ModelCard)
    reloaded = ModelCard(str(card))
    got = {
        r.metric_name: (r.metric_type, r.metric_value, r.dataset_split) for r in reloaded.data.eval_results
    }
    assert got == {"match_rate@1": ("match_rate_1", 41.25, "test"), "rmse@1": ("rmse_1", 0.0912, "test")}
    assert "model-index" in str(card)
    assert "Jiao, Rui" in reloaded.text


def test_model_index_needs_model_name(tmp_path):
    template = tmp_path / "m.md"
    template.write_text("---\n{{ card_data }}\n---\n\nx\n")
    results = eval_results({"acc": 1.0}, task_type="t", dataset_name="d", dataset_type="d")
    with pytest.raises(CardError, match="model_name"):
        render_card(template, metadata={"license": "mit"}, eval_results=results)


@pytest.mark.parametrize("value", [math.nan, "41%", None, True])
def test_eval_results_refuse_non_numbers(value):
    with pytest.raises(CardError, match="finite number"):
        eval_results({"match_rate": value}, task_type="t", dataset_name="d", dataset_type="d")


def test_missing_field_is_named():
    fields = dict(DATASET_FIELDS)
    del fields["limitations"], fields["source"]
    with pytest.raises(CardError, match="limitations, source"):
        render_card("dataset", metadata=DATASET_META, **fields)


def test_unknown_template_lists_known_ones():
    with pytest.raises(CardError, match="dataset"):
        render_card("no_such_card", metadata={})


def test_template_without_metadata_block_refused(tmp_path):
    template = tmp_path / "bad.md"
    template.write_text("# {{ name }}\n")
    with pytest.raises(CardError, match="card_data"):
        render_card(template, name="x")


def test_tokenizer_card_is_complete(tmp_path):
    tok = build_tokenizer()
    card = tokenizer_card(tok, repo_id="someone/cif-tok")
    card.save(tmp_path / "README.md")
    check_card(tmp_path, "tokenizer")
    assert 'AutoTokenizer.from_pretrained("someone/cif-tok")' in card.text
    assert f"size: {len(tok)} tokens" in card.text
    assert "Antunes" in card.text


def test_card_with_leftover_markup_refused(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlicense: mit\nlibrary_name: transformers\ntags: [a]\n---\n\n{{ usage }}\n"
    )
    with pytest.raises(CardError, match=r"\{\{"):
        check_card(tmp_path, "tokenizer")


def test_card_without_metadata_refused(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n\n# x\n")
    with pytest.raises(CardError, match="library_name, tags"):
        check_card(tmp_path, "tokenizer")


def test_dataset_card_with_standard_split_sizes():
    fields = dict(DATASET_FIELDS, standard_splits={"train": 11356})
    card = render_card("dataset", metadata=DATASET_META, **fields)
    assert "| train | 3487 | 11356 |" in card.text
    assert "| validation | 300 | n/a |" in card.text


def test_language_model_card_carries_measured_results(tmp_path):
    """hfmat.lm.card renders model_cards/cif_lm.md through render_card: model-index from eval metrics."""
    import shutil
    from pathlib import Path

    from hfmat.hub import check_folder
    from hfmat.lm.card import write_model_card

    folder = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "lm-tiny", tmp_path / "lm"))
    run = {
        "k": 1,
        "constrained": True,
        "num_compositions": 50,
        "validity_rate": 0.64,
        "match_rate": 0.12,
        "rmse": 0.081,
    }
    write_model_card(
        folder, repo_id="me/cif-gpt2", eval_metrics={"description": "50 test compositions.", "runs": [run]}
    )
    assert check_folder(folder).kind == "language-model"
    card = ModelCard.load(folder / "README.md")
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert got == {"match_rate@1": 12.0, "validity@1": 64.0, "rmse@1": 0.081}
    assert card.data.eval_results[0].dataset_split == "test"
    assert 'from_pretrained("me/cif-gpt2")' in card.text and "Antunes" in card.text


def test_language_model_card_keeps_runs_at_two_temperatures_apart(tmp_path):
    """Slices of one evaluation merge (eval_lm_csp.py --merge); runs at other temperatures stay
    separate rows of the card and separate model-index metrics."""
    import importlib.util
    import json
    import shutil
    from pathlib import Path

    from hfmat.lm.card import write_model_card

    spec = importlib.util.spec_from_file_location("eval_lm_csp", REPO / "benchmarks" / "eval_lm_csp.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def part(t, n, matched, valid):
        run = {"k": 1, "constrained": True, "temperature": t, "num_compositions": n, "num_matched": matched}
        run |= {"validity_rate": valid / n, "match_rate": matched / n, "rmse": 0.1}
        meta = {"model": "m", "dataset_name": "Perov-5", "dataset_type": "perov_5", "dataset_split": "test"}
        return {**meta, "command": f"T {t}", "runs": [run], "info": {}, "description": f"T {t}."}

    paths = []
    for i, p in enumerate([part(1.0, 500, 250, 470), part(1.0, 1000, 490, 950), part(0.7, 1500, 744, 1440)]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(p))
    merged = bench.merge([str(p) for p in paths])
    got = {r["temperature"]: (r["num_compositions"], r["num_matched"]) for r in merged["runs"]}
    assert got == {1.0: (1500, 740), 0.7: (1500, 744)}
    # a rejection-sampled run is its own row and metric, with its first-draw (raw) validity beside it
    rejection = {
        **merged["runs"][-1],
        "max_attempts": 5,
        "validity_first_draw_rate": 0.7,
        "validity_rate": 0.97,
    }
    merged["runs"].append(rejection)
    folder = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "lm-tiny", tmp_path / "lm"))
    write_model_card(folder, repo_id="me/cif-gpt2", eval_metrics=merged)
    card = ModelCard.load(folder / "README.md")
    names = {r.metric_name for r in card.data.eval_results}
    assert {"validity@1 T1", "validity@1 T0.7", "validity@1 T0.7 rejection5"} <= names
    assert "| this model (constrained, T 0.7) | 1 | 1500 | 96.00 |" in card.text
    assert (
        "| this model (constrained, T 0.7, rejection sampling: up to 5 draws; 70.00 % valid at the "
        "first draw) | 1 | 1500 | 97.00 |" in card.text
    )


def test_pipeline_card_carries_measured_results(tmp_path):
    """hfmat.diffusion.card renders model_cards/diffusion.md through render_card."""
    import shutil
    from pathlib import Path

    from hfmat.diffusion.card import write_model_card
    from hfmat.hub import check_folder

    folder = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "pipeline-tiny", tmp_path / "pipe"))
    row = {"steps": 50, "corrector": "no", "k": 1, "match_rate": 31.5, "rmse": 0.12, "n": 40}
    write_model_card(folder, evaluation={"text": "40 test compositions.", "rows": [row]}, repo_id="me/diff")
    assert check_folder(folder).kind == "pipeline"
    card = ModelCard.load(folder / "README.md")
    assert {r.metric_value for r in card.data.eval_results} == {31.5, 0.12}
    assert card.data.to_dict()["library_name"] == "hfmat"
    assert 'CrystalDiffusionPipeline.from_pretrained("me/diff")' in card.text and "Jiao, Rui" in card.text


def test_metric_values_keep_six_significant_digits():
    results = eval_results(
        {"match_rate@20": 0.936 * 100, "rmse@20": 0.13770923206134766},
        task_type="t",
        dataset_name="d",
        dataset_type="d",
    )
    assert [r.metric_value for r in results] == [93.6, 0.137709]


@pytest.mark.parametrize(
    "name", ["cif-gpt2-perov5", "crystal-diffusion-perov5", "crystal-diffusion-perov5-gen"]
)
def test_shipped_models_name_no_local_path(name, assert_no_local_paths):
    """What a shipped model publishes (cards, configs, training and evaluation records) names no
    path of the machine it was made on, and no component config says where it was loaded from."""
    import json
    from pathlib import Path

    from hfmat.shipped import shipped_model

    folder = shipped_model(name)
    assert_no_local_paths(folder, Path(__file__).resolve().parents[1], Path("/tmp"))
    for config in folder.glob("*/*config.json"):
        assert "_name_or_path" not in json.loads(config.read_text()), config


def test_a_continued_model_names_the_model_its_first_own_stage_was_fine_tuned_from():
    """A second GRPO stage continues this repo's first stage, which was fine-tuned from another repo:
    the card's base_model is that other repo, never this one; a model continued from scratch has none."""
    from hfmat.hub.cards import model_card
    from hfmat.hub.provenance import fine_tuned_from

    repo = "hfmat/cif-gpt2-perov5-rl"
    stage = {"config": {"dataset": "perov_5", "init_from": "runs/x"}, "summary": {}}
    record = {
        **stage,
        "base_model": repo,
        "previous": [{**stage, "base_model": None}, {**stage, "base_model": "hfmat/cif-gpt2-perov5"}],
    }
    assert fine_tuned_from(record, repo) == "hfmat/cif-gpt2-perov5"
    assert fine_tuned_from({**record, "previous": [{**stage, "base_model": None}]}, repo) is None
    fields = (
        "architecture context description evaluation example example_prompt limitations n_params training"
    )
    card = model_card(
        "cif_lm", name="x", repo_id=repo, record=record, library_name="transformers", tags=["hfmat"],
        results_table=None, vocab_size=1, **dict.fromkeys(fields.split(), "x"),
    )  # fmt: skip
    assert card.data.base_model == "hfmat/cif-gpt2-perov5"
