"""Crystal CLIP: retrieval on constructed cases, the loss, the crystal encoder, and a tiny training
run (training/train_crystal_clip.py) whose loss falls and whose folder loads back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scripts import load_script

from hfmat.text import CrystalCLIP, CrystalEncoder, clip_loss, retrieval_accuracy

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "crystal_clip_tiny.yaml"


def test_identical_embeddings_retrieve_every_partner():
    emb = torch.randn(250, 8, generator=torch.Generator().manual_seed(0))
    out = retrieval_accuracy(emb, emb.clone(), num_candidates=100)
    assert out["blocks"] == 2 and out["queries"] == 200  # the last 50 pairs make no full block
    for key in (
        "text_to_crystal_top1",
        "text_to_crystal_top5",
        "crystal_to_text_top1",
        "crystal_to_text_top5",
    ):
        assert out[key] == 1.0
    assert (out["chance_top1"], out["chance_top5"]) == (0.01, 0.05)


def test_constant_and_mismatched_embeddings_score_as_they_should():
    ones = torch.ones(100, 4)
    assert retrieval_accuracy(ones, ones)["text_to_crystal_top5"] == 0.0  # ties count against
    # crystal i is text (i+1) mod 4's best match, its own text ranks second: top-1 0, top-5 (4 candidates) 1
    text = torch.eye(4)
    crystal = torch.stack([text[i] + 1.5 * text[(i + 1) % 4] for i in range(4)])
    out = retrieval_accuracy(text, crystal, num_candidates=4, ks=(1, 2))
    assert out["crystal_to_text_top1"] == 0.0 and out["crystal_to_text_top2"] == 1.0
    with pytest.raises(ValueError, match="fewer than num_candidates"):
        retrieval_accuracy(torch.randn(50, 4), torch.randn(50, 4))
    with pytest.raises(ValueError, match="one shape"):
        retrieval_accuracy(torch.randn(100, 4), torch.randn(100, 3))


def test_clip_loss_prefers_aligned_pairs():
    emb = torch.nn.functional.normalize(
        torch.randn(16, 8, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    scale = torch.tensor(2.0)
    aligned = clip_loss(emb, emb, scale)
    shuffled = clip_loss(emb, emb.roll(1, dims=0), scale)
    assert aligned < shuffled


def test_crystal_encoder_is_permutation_invariant_and_checks_sizes():
    enc = CrystalEncoder(
        hidden_dim=16, num_layers=1, num_frequencies=4, time_embed_dim=8, lattice_scale=2.0, embed_dim=8
    )
    types = torch.tensor([38, 22, 8, 8, 8])
    frac = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    lattice = 3.9 * torch.eye(3).unsqueeze(0)
    out = enc(types, frac, lattice, torch.tensor([5]))
    perm = torch.tensor([4, 2, 0, 3, 1])
    assert out.shape == (1, 8)
    assert torch.allclose(out, enc(types[perm], frac[perm], lattice, torch.tensor([5])), atol=1e-5)
    with pytest.raises(ValueError, match="num_atoms sums to 4"):
        enc(types, frac, lattice, torch.tensor([4]))


@pytest.fixture(scope="module")
def tiny_run(perov_val_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    args = [
        "--config", str(TINY), "--output-dir", str(out),
        "--set", f"dataset={perov_val_csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", "max_steps=40", "num_candidates=8", "lr=5e-3", "log_every=10", "eval_every=40",
    ]  # fmt: skip
    return out, load_script("training/train_crystal_clip.py").main(args)


def test_tiny_run_learns_and_saves_a_loadable_folder(tiny_run):
    out, summary = tiny_run
    assert summary["step"] == 40 and summary["train_pairs"] == 32
    assert "hard_negatives" not in summary  # no hard_negative_fraction: shuffled batches, as before
    assert summary["train_loss"] < summary["first_train_loss"] - 0.3  # 32 pairs, 2 batches: it memorises
    retrieval = summary["eval"]["retrieval"]["text_composition"]
    assert retrieval["num_candidates"] == 8 and retrieval["queries"] == 8
    final = out / "final"
    card = (final / "README.md").read_text()
    assert "crystal-clip-tiny" in card and "accelerate launch training/train_crystal_clip.py" in card
    model = CrystalCLIP.from_pretrained(final)
    emb = model.embed_texts(["SrTiO3", "ZnO, a hexagonal crystal"])
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    config = json.loads((final / "crystal_encoder" / "config.json").read_text())
    assert (
        config["_class_name"] == "CrystalEncoder"
        and (final / "crystal_encoder" / "diffusion_pytorch_model.safetensors").is_file()
    )


def test_resume_uses_the_tokenizer_the_run_started_with(tiny_run, tmp_path):
    """A fresh start saves its trained prose tokenizer under output_dir; --resume loads that one
    (retraining WordPiece may not give the same vocabulary) and says so when it is missing."""
    from transformers import AutoTokenizer

    out, _ = tiny_run
    script = load_script("training/train_crystal_clip.py")
    saved = AutoTokenizer.from_pretrained(out / script.RUN_TOKENIZER)
    cfg = {"tokenizer": None, "output_dir": str(out), "max_text_length": 64}
    assert script.prose_tokenizer_for(cfg, None, resume=True).get_vocab() == saved.get_vocab()
    with pytest.raises(FileNotFoundError, match="holds no tokenizer.json"):
        script.prose_tokenizer_for({**cfg, "output_dir": str(tmp_path)}, None, resume=True)


def test_text_tower_loads_with_plain_transformers(tiny_run):
    """The folder's text tower gives the same embedding through transformers alone (no hfmat)."""
    out, _ = tiny_run
    final = out / "final"
    code = f"""
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(final)!r}, subfolder="tokenizer")
bert = AutoModel.from_pretrained({str(final)!r}, subfolder="text_encoder")
enc = tok(["SrTiO3"], return_tensors="pt", return_token_type_ids=False)
emb = torch.nn.functional.normalize(bert(**enc).pooler_output, dim=-1)
print(json.dumps({{"emb": emb[0].tolist(), "tokens": tok.tokenize("SrTiO3"),
                  "hfmat": sorted(k for k in sys.modules if k.startswith("hfmat"))}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=out)
    plain = json.loads(result.stdout.strip().splitlines()[-1])
    assert plain["hfmat"] == [] and plain["tokens"] == ["Sr", "Ti", "O", "3"]
    ours = CrystalCLIP.from_pretrained(final).embed_texts(["SrTiO3"])[0]
    assert torch.allclose(torch.tensor(plain["emb"]), ours, atol=1e-5)


SHIPPED = REPO / "src" / "hfmat" / "checkpoints" / "crystal-clip-perov5"


def test_shipped_perov5_clip_matches_texts_to_their_crystals(perov_test_head):
    """The committed Crystal CLIP ranks each of 4 perov-5 test crystals first for its own
    composition + crystal-system text (its card reports the figures among 100)."""
    from pymatgen.core import Structure

    from hfmat.data import load_crystal_dataset
    from hfmat.data.descriptions import add_descriptions

    model = CrystalCLIP.from_pretrained(SHIPPED)
    ds = add_descriptions(load_crystal_dataset("perov_5", data_dir=perov_test_head)["test"])
    crystals = model.embed_structures([Structure.from_str(c, fmt="cif") for c in ds["cif"]])
    texts = model.embed_texts(ds["text_system"])
    out = retrieval_accuracy(texts, crystals, num_candidates=len(ds), ks=(1,))
    assert out["text_to_crystal_top1"] == 1.0 and out["crystal_to_text_top1"] == 1.0
    assert model.config["format"] == "hfmat-crystal-clip"


def test_tiny_run_on_two_sources_reports_retrieval_on_each_sources_test_split(shared_data, tmp_path):
    """``datasets:`` (hfmat.data.sources): perov-5 and carbon-24 rows trained together, each source's
    sentences naming its own properties; retrieval on all test rows and on each source's alone."""
    import yaml
    from csv_head import head_csv

    sources = []
    for name, folder in (("perov", "perov_5"), ("carbon", "carbon_24")):
        data = tmp_path / name
        data.mkdir()
        head_csv(shared_data / folder / "val.csv", 20, data / "val.csv")
        head_csv(shared_data / folder / "test.csv", 8, data / "test.csv")
        sources.append({"dataset": folder, "data_dir": str(data), "split": "val", "name": name})
    config = {**yaml.safe_load(TINY.read_text()), "datasets": sources, "test_split": "test"}
    config.update(eval_holdout=8, max_train_samples=None, max_steps=12, num_candidates=8)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    summary = load_script("training/train_crystal_clip.py").main(
        ["--config", str(path), "--output-dir", str(out)]
    )
    assert summary["step"] == 12 and summary["train_pairs"] == 32 and summary["eval_pairs"] == 8
    assert summary["test"]["pairs"] == 16 and summary["test"]["text_sentence"]["num_candidates"] == 8
    by_source = summary["test_by_source"]
    assert sorted(by_source) == ["carbon:test", "perov:test"]
    assert [by_source[k]["pairs"] for k in sorted(by_source)] == [8, 8]
    assert by_source["carbon:test"]["text_composition"]["queries"] == 8
    record = json.loads((out / "final" / "training_summary.json").read_text())
    assert record["config"]["dataset"] == "perov:val + carbon:val"
    assert {k: v["train_crystals"] for k, v in record["data"]["sources"].items()} == {
        "perov:val": 16,
        "carbon:val": 16,
    }
    assert "C" in record["data"]["elements"] and max(record["data"]["num_atoms"]) > 5
    # the prose tokenizer keeps carbon's element, space group and energy words
    model = CrystalCLIP.from_pretrained(out / "final")
    tokens = model.tokenizer.tokenize(
        "C crystallizes in the hexagonal P6_3/mmc space group (No. 194). It has an energy of -154.22 eV/atom."
    )
    assert tokens[:2] == ["C", " crystallizes"] and " P6_3/mmc" in tokens and " 194" in tokens
    assert "[UNK]" not in tokens
