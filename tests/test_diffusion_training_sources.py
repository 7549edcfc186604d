"""training/train_diffusion.py with several sources in one config (``datasets:``, as
train_cif_lm.py takes it): both reach the training set, each is counted in the training record and
the card, every element of the data is an atom type the pipeline samples with, and a cell above
``max_atoms`` is refused before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from csv_head import head_csv
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "diffusion_tiny.yaml"


def _args(sources: list[dict], out: Path, *sets: str) -> list[str]:
    return [
        "--config", str(TINY), "--output-dir", str(out),
        "--set", f"datasets={json.dumps(sources)}", "data_dir=null", "max_train_samples=null",
        "eval_holdout=3", "max_steps=2", "per_device_batch_size=4", "eval_every=2", "save_every=2",
        "log_every=1", "hidden_dim=16", "num_layers=1", "num_frequencies=4", "time_embed_dim=8", *sets,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def two_sources(shared_data, tmp_path_factory) -> list[dict]:
    """10 MP-20 crystals (up to 20 atoms, 26 elements) and 5 Carbon-24 crystals, as two CSVs."""
    folder = tmp_path_factory.mktemp("sources")
    mp20 = head_csv(shared_data / "mp_20_subset" / "val.csv", 10, folder / "mp20.csv")
    carbon = head_csv(shared_data / "carbon_24" / "val.csv", 5, folder / "carbon.csv")
    return [{"dataset": str(mp20), "name": "mp20"}, {"dataset": str(carbon), "name": "carbon", "repeat": 2}]


def test_two_sources_train_a_pipeline_that_counts_each_and_samples_every_element(
    two_sources, tmp_path, assert_no_local_paths
):
    import torch

    from hfmat.diffusion import CrystalDiffusionPipeline

    out = tmp_path / "run"
    summary = load_script("training/train_diffusion.py").main(
        _args(two_sources, out, "max_atoms=24", "model_name=crystal-diffusion-mixed")
    )
    # 15 rows: 2 + 1 held out (in proportion), the rest trained on, carbon's 4 twice
    assert summary["eval_crystals"] == 3 and summary["train_crystals"] == 8 + 2 * 4
    final = out / "final"
    record = json.loads((final / "training_summary.json").read_text())
    assert record["data"]["sources"] == {
        "mp20:train": {"dataset": "mp20.csv", "split": "train", "train_crystals": 8, "eval_crystals": 2, "repeat": 1},
        "carbon:train": {"dataset": "carbon.csv", "split": "train", "train_crystals": 4, "eval_crystals": 1, "repeat": 2},
    }  # fmt: skip
    assert record["config"]["dataset"] == "mp20:train + carbon:train"
    elements = set(record["data"]["elements"])
    assert {"C", "O", "Hg", "Pm"} <= elements and len(elements) > 10
    card = (final / "README.md").read_text()
    assert "`mp20:train` (8 crystals; 2 held out)" in card
    assert "`carbon:train` (4 crystals, used 2 times per epoch; 1 held out)" in card
    assert_no_local_paths(final, str(tmp_path), str(two_sources[0]["dataset"]))

    pipe = CrystalDiffusionPipeline.from_pretrained(final)
    assert pipe.denoiser.config.max_atoms == 24
    heavy = sorted(elements - {"C", "O"})  # every trained element is an atom type the model takes
    comp = "".join(f"{el}1" for el in heavy[:6])
    result = pipe(
        compositions=[comp], num_samples=1, num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    got = {el.symbol for el in result.structures[0].composition.elements}
    assert got == set(heavy[:6])


def test_a_source_with_cells_above_max_atoms_is_refused(two_sources, tmp_path):
    script = load_script("training/train_diffusion.py")
    with pytest.raises(ValueError, match=r"more than max_atoms=12 atoms"):
        script.main(_args(two_sources[:1], tmp_path, "max_atoms=12"))
