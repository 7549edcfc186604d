"""Hard-negative batches for Crystal CLIP (hfmat.text.sampling): rows that share a key share a batch,
every row is used once per epoch, the order is seeded; and the formula-free text style."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import load_script

from hfmat.text.data import structure_text
from hfmat.text.sampling import HardNegativeBatchSampler

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "crystal_clip_tiny.yaml"

# 14 keys shared by two rows, 2 by three, 40 unique: 74 rows
KEYS = [f"pair{i}" for i in range(14) for _ in range(2)]
KEYS += [f"triple{i}" for i in range(2) for _ in range(3)]
KEYS += [f"single{i}" for i in range(40)]
KEYS = [KEYS[(7 * i) % len(KEYS)] for i in range(len(KEYS))]  # interleaved, as in a real split


def test_every_row_once_per_epoch_and_shared_keys_share_a_batch():
    sampler = HardNegativeBatchSampler(KEYS, 16, hard_negative_fraction=0.5, seed=0, drop_last=False)
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(KEYS)))
        assert [len(b) for b in batches] == [16, 16, 16, 16, 10]
        where = {i: n for n, b in enumerate(batches) for i in b}
        for key in {k for k in KEYS if not k.startswith("single")}:
            rows = [i for i, k in enumerate(KEYS) if k == key]
            assert len({where[i] for i in rows}) == 1, f"{key} split over batches in epoch {epoch}"
        for batch in batches[:-1]:  # full batches: at most half are grouped rows, the rest unique keys
            grouped = sum(1 for i in batch if not KEYS[i].startswith("single"))
            assert grouped <= 8


def test_seeded_order_and_epochs_differ():
    a = HardNegativeBatchSampler(KEYS, 16, seed=3)
    b = HardNegativeBatchSampler(KEYS, 16, seed=3)
    assert list(a) == list(b)  # epoch 0 both
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b)
    assert a.batches(0) != a.batches(1)
    assert HardNegativeBatchSampler(KEYS, 16, seed=4).batches(0) != a.batches(0)
    # iterating moves to the next epoch; set_epoch goes back
    c = HardNegativeBatchSampler(KEYS, 16, seed=3)
    first, second = list(c), list(c)
    c.set_epoch(0)
    assert list(c) == first and first != second


def test_drop_last_gives_whole_batches_only():
    sampler = HardNegativeBatchSampler(KEYS, 16, seed=1, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4 and all(len(b) == 16 for b in batches)
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used)) and len(KEYS) - len(used) < 16


def test_groups_larger_than_the_hard_share_fill_batches_when_unique_rows_run_out():
    keys = ["cubic"] * 30 + ["orthorhombic"] * 25 + ["tetragonal"] * 9  # no unique key
    sampler = HardNegativeBatchSampler(keys, 16, hard_negative_fraction=0.5, seed=0, drop_last=False)
    batches = sampler.batches(0)
    assert sorted(i for b in batches for i in b) == list(range(64))
    assert all(len(b) == 16 for b in batches)
    # each batch is made of chunks of one key: at most a few keys per batch, never 16 different ones
    assert all(len({keys[i] for i in b}) <= 3 for b in batches)
    stats = sampler.stats()
    assert stats["rows_in_groups"] == 64 and stats["groups"] == 3
    assert stats["same_key_pairs_per_batch"] > stats["same_key_pairs_per_random_batch"]


def test_more_same_key_pairs_than_shuffled_batches():
    stats = HardNegativeBatchSampler(KEYS, 16, hard_negative_fraction=0.5, seed=0).stats()
    assert stats["rows_in_groups"] == 34 and stats["groups"] == 16
    assert stats["same_key_pairs_per_batch"] >= 3 * stats["same_key_pairs_per_random_batch"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="hard_negative_fraction"):
        HardNegativeBatchSampler(KEYS, 16, hard_negative_fraction=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        HardNegativeBatchSampler(KEYS, 1)
    with pytest.raises(ValueError, match="no rows"):
        HardNegativeBatchSampler([], 16)


def test_structure_text_names_no_formula():
    row = {
        "crystal_system": "orthorhombic",
        "spacegroup_symbol": "Pmm2",
        "spacegroup_number": 25,
        "structure_type": "",
    }
    assert structure_text(row) == "an orthorhombic crystal in the Pmm2 space group (No. 25)"
    cubic = {**row, "crystal_system": "cubic", "spacegroup_symbol": "Pm-3m", "spacegroup_number": 221}
    assert (
        structure_text({**cubic, "structure_type": "perovskite"})
        == "a cubic crystal in the Pm-3m space group (No. 221) with the perovskite structure"
    )


def test_tiny_run_with_hard_negatives_and_the_formula_free_style(perov_val_csv, tmp_path):
    """The tiny config with hard-negative batches (by crystal system: the 32 rows share few
    compositions) and the formula-free style: the batches hold more same-key pairs than shuffled ones,
    the loss falls, and the folder records the style and loads back."""
    from hfmat.text import CrystalCLIP

    columns = "[text_composition,text_system,text_sentence,text_structure]"
    args = [
        "--config", str(TINY), "--output-dir", str(tmp_path),
        "--set", f"dataset={perov_val_csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", "max_steps=30", "num_candidates=8", "lr=5e-3", "log_every=10", "eval_every=30",
        "hard_negative_fraction=0.5", "hard_negative_key=crystal_system", f"text_columns={columns}",
    ]  # fmt: skip
    summary = load_script("training/train_crystal_clip.py").main(args)
    hard = summary["hard_negatives"]
    assert hard["key"] == "crystal_system" and hard["fraction"] == 0.5 and hard["rows"] == 32
    assert hard["same_key_pairs_per_batch"] > hard["same_key_pairs_per_random_batch"]
    assert summary["step"] == 30 and summary["train_loss"] < summary["first_train_loss"] - 0.3
    assert "text_structure" in summary["eval"]["retrieval"]
    final = tmp_path / "final"
    assert json.loads((final / "clip_config.json").read_text())["text_columns"][-1] == "text_structure"
    model = CrystalCLIP.from_pretrained(final)
    assert model.embed_texts(["a cubic crystal in the Pm-3m space group (No. 221)"]).shape == (1, 16)


def test_a_bad_hard_negative_key_is_named(perov_val_csv, tmp_path):
    args = [
        "--config", str(TINY), "--output-dir", str(tmp_path),
        "--set", f"dataset={perov_val_csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", "max_steps=1", "hard_negative_fraction=0.5", "hard_negative_key=nope",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="hard_negative_key: 'nope' is not a column"):
        load_script("training/train_crystal_clip.py").main(args)
