"""De novo evaluation: benchmarks/bench_diffusion_gen.py on a tiny random pipeline and a few Perov-5
rows, the de novo model card (generation metrics in the model-index and a results table), and
SMACT's verdict on elements it has no data for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from csv_head import head_csv
from huggingface_hub import ModelCard
from scripts import load_script

from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.diffusion.card import CSP_COMPARISON, PUBLISHED_GENERATION_PEROV5, write_model_card
from hfmat.evaluation import smact_valid

REPO = Path(__file__).resolve().parents[1]

# random untrained models draw exotic elements, whose missing electronegativity pymatgen warns about
pytestmark = pytest.mark.filterwarnings("ignore:No Pauling electronegativity", "ignore:Issues encountered")


def _bench():
    return load_script("benchmarks/bench_diffusion_gen.py")


def _save_pipeline(make, folder: Path, de_novo: bool) -> Path:
    pipe = make(de_novo, num_atoms=5)  # 5 atoms, as every Perov-5 crystal
    pipe.save_pretrained(folder)
    (folder / "training_summary.json").write_text(
        json.dumps({"config": {"train_split": "val", "model_name": folder.name}, "summary": {}})
    )
    return folder


@pytest.fixture
def perov_dir(shared_data, tmp_path, monkeypatch):
    """perov_5/{test,val}.csv with the first 8 rows of each, and the fingerprint cache in tmp_path."""
    monkeypatch.setenv("HFMAT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "data" / "perov_5"
    out.mkdir(parents=True)
    for split in ("test", "val"):
        head_csv(shared_data / "perov_5" / f"{split}.csv", 8, out / f"{split}.csv")
    return out.parent


def test_bench_scores_samples_and_writes_a_card(tmp_path, perov_dir, capsys, tiny_diffusion_pipeline):
    bench = _bench()
    folder = _save_pipeline(tiny_diffusion_pipeline, tmp_path / "gen-tiny", de_novo=True)
    argv = [
        "--pipeline", str(folder), "--data-dir", str(perov_dir), "--num-samples", "8", "--steps", "3",
        "--batch-size", "5", "--seed", "1", "--threads", "1", "--no-progress",
        "--json", str(tmp_path / "result.json"),
    ]  # fmt: skip
    result = bench.main(argv)
    printed = capsys.readouterr().out
    assert result["command"] in printed and "| COV-R % |" in printed

    saved = json.loads((tmp_path / "result.json").read_text())
    fig, m = saved["figures"], saved["metrics"]
    assert m["n_generated"] == 8 and saved["num_atoms"] == {"5": 8}
    assert saved["reference"] == "perov_5/test (8 crystals)"
    assert saved["novelty_reference"] == "perov_5/val (8 crystals)"
    for key in ("structural_validity", "compositional_validity", "validity", "cov_recall", "cov_precision"):
        assert 0.0 <= fig[key] <= 100.0 and fig[key] == pytest.approx(100 * m[key])
    assert fig["validity"] <= min(fig["structural_validity"], fig["compositional_validity"])
    # every sample that is not valid is counted under one reason
    assert sum(saved["invalid_reasons"].values()) == round(8 * (1 - m["validity"]))
    if m["n_valid"]:
        assert fig["wdist_density"] >= 0 and fig["novelty"] is not None

    bench.main(["--pipeline", str(folder), "--card-from", str(tmp_path / "result.json")])
    card = ModelCard.load(folder / "README.md")
    index = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert index["cov_recall"] == pytest.approx(fig["cov_recall"], rel=1e-5)
    assert card.data.eval_results[0].task_type == "crystal-generation"
    assert "crystal-generation" in card.data.tags and "crystal-structure-prediction" not in card.data.tags
    assert (
        "| COV-R % |" in card.text
        and f"{PUBLISHED_GENERATION_PEROV5['DiffCSP']['cov_recall']:.2f}" in card.text
    )
    assert saved["command"] in card.text and CSP_COMPARISON not in card.text


def test_a_carbon24_de_novo_card_compares_with_carbon24_figures(tmp_path, tiny_diffusion_pipeline):
    from hfmat.diffusion.card import GENERATION_COMPARISON, GENERATION_COMPARISON_CARBON24

    gen = _save_pipeline(tiny_diffusion_pipeline, tmp_path / "gen-c24", de_novo=True)
    measured = {"structural_validity": 99.8, "cov_recall": 97.4, "cov_precision": 20.2, "wdist_density": 0.2}
    write_model_card(gen, evaluation={"text": "Measured.", "generation": measured, "dataset": "carbon_24"})
    card = ModelCard.load(gen / "README.md")
    # DiffCSP's Carbon-24 COV-P (97.27) and CDVAE's (83.08), not the Perov-5 ones (98.27, 98.46)
    assert "| COV-P % | 20.20 | 83.08 | 97.27 |" in card.text, card.text
    assert GENERATION_COMPARISON_CARBON24 in card.text and GENERATION_COMPARISON not in card.text
    assert "compositional validity" not in card.text  # neither measured nor published for one element


def test_bench_refuses_a_structure_prediction_pipeline(tmp_path, perov_dir, tiny_diffusion_pipeline):
    folder = _save_pipeline(tiny_diffusion_pipeline, tmp_path / "csp-tiny", de_novo=False)
    with pytest.raises(SystemExit, match="not de novo"):
        _bench().main(["--pipeline", str(folder), "--data-dir", str(perov_dir), "--num-samples", "2"])


def test_card_generation_table_marks_unmeasured_and_refuses_bad_input(tmp_path, tiny_diffusion_pipeline):
    gen = _save_pipeline(tiny_diffusion_pipeline, tmp_path / "gen", de_novo=True)
    measured = {"structural_validity": 99.5, "cov_recall": 97.0, "wdist_density": 0.25, "novelty": None}
    write_model_card(gen, evaluation={"text": "Measured.", "generation": measured})
    card = ModelCard.load(gen / "README.md")
    assert {r.metric_type for r in card.data.eval_results} == {
        "structural_validity",
        "cov_recall",
        "wdist_density",
    }
    assert "| structural validity % | 99.50 | 100.00 | 100.00 |" in card.text
    assert "| EMD density (g/cm^3) | 0.2500 | 0.1258 | 0.1110 |" in card.text
    assert "| novelty % (of valid, vs training set) | n/a |" in card.text
    with pytest.raises(ValueError, match="unknown generation metric"):
        write_model_card(gen, evaluation={"text": "x", "generation": {"cov_r": 1.0}})

    csp = _save_pipeline(tiny_diffusion_pipeline, tmp_path / "csp", de_novo=False)
    with pytest.raises(ValueError, match="structure-prediction pipeline"):
        write_model_card(csp, evaluation={"text": "x", "generation": measured})
    write_model_card(csp)  # a structure-prediction card keeps its CSP comparison paragraph
    assert CSP_COMPARISON in (csp / "README.md").read_text()


@pytest.mark.parametrize("formula", ["TsO2", "Og", "SrRfO3"])
def test_smact_calls_elements_without_data_invalid(formula):
    assert smact_valid(formula) is False


def test_shipped_de_novo_pipeline_samples_perovskite_sized_cells():
    folder = REPO / "checkpoints" / "crystal-diffusion-perov5-gen"
    assert folder.is_dir(), "checkpoints/crystal-diffusion-perov5-gen is not shipped"
    pipe = CrystalDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.type_scheduler is not None and pipe.denoiser.config.predict_atom_types
    out = pipe(num_samples=3, num_inference_steps=4, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in out.structures] == [5, 5, 5]  # Perov-5's only cell size
    again = pipe(num_samples=3, num_inference_steps=4, generator=torch.Generator().manual_seed(0))
    assert out.formulas == again.formulas
