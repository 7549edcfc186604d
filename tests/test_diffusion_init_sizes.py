"""train_diffusion.py --init-from a de novo pipeline on data with other cell sizes: the denoiser takes
the config's max_atoms and the training rows' atom-count distribution (Perov-5 -> Perov-5 + Carbon-24),
and a continuation on the same data changes neither."""

from __future__ import annotations

import json

from csv_head import head_csv
from scripts import load_script

from hfmat.diffusion import CrystalDenoiser

TINY = "training/configs/diffusion_tiny.yaml"
SMALL = ["hidden_dim=16", "num_layers=1", "num_frequencies=4", "time_embed_dim=8", "task=gen"]


def _args(out, *sets):
    return [
        "--config", TINY, "--output-dir", str(out),
        "--set", "data_dir=null", "train_split=train", "eval_holdout=4", "max_train_samples=null",
        "max_steps=1", "per_device_batch_size=4", "save_every=100", "eval_every=100", "log_every=1",
        *SMALL, *sets,
    ]  # fmt: skip


def test_init_from_takes_the_configs_max_atoms_and_the_datas_cell_sizes(shared_data, tmp_path, capsys):
    script = load_script("training/train_diffusion.py")
    perov = head_csv(shared_data / "perov_5" / "val.csv", 16, tmp_path / "perov.csv")
    carbon = head_csv(shared_data / "carbon_24" / "val.csv", 16, tmp_path / "carbon.csv")
    script.main(_args(tmp_path / "base", f"dataset={perov}", "max_atoms=20"))
    base = tmp_path / "base" / "final"
    assert json.loads((base / "denoiser" / "config.json").read_text())["max_atoms"] == 20
    capsys.readouterr()

    def components(*sets):
        argv = _args(tmp_path / "next", f"init_from={base}", *sets)
        cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
        train, _, _ = script.build_datasets(cfg)
        return script.build_components(cfg, train)["denoiser"], train

    same, _ = components(f"dataset={perov}", "max_atoms=20")  # the base's data: nothing to change
    assert "recomputed" not in capsys.readouterr().out
    assert same.config.max_atoms == 20 and same.config.num_atoms_distribution[5] == 1.0

    sources = json.dumps(
        [{"dataset": str(perov), "name": "perov"}, {"dataset": str(carbon), "name": "carbon"}]
    )
    both, train = components(f"datasets={sources}", "max_atoms=24")
    assert "max_atoms 20 -> 24, atom-count distribution recomputed" in capsys.readouterr().out
    dist = both.config.num_atoms_distribution
    counts = list(train["num_atoms"])
    assert both.config.max_atoms == 24 and len(dist) == 25 and abs(sum(dist) - 1) < 1e-5
    assert [n for n, p in enumerate(dist) if p > 0] == sorted(set(counts)) and max(counts) > 5
    assert abs(dist[5] - counts.count(5) / len(counts)) < 1e-5
    assert "C" in both.config.elements
    # the weights are the base's (only the sampling statistics changed)
    ref = CrystalDenoiser.from_pretrained(base / "denoiser")
    assert all((both.state_dict()[k] == v).all() for k, v in ref.state_dict().items())


def test_lattice_scale_factor_sets_the_scale_from_the_data(shared_data, tmp_path, capsys):
    """lattice_scale_factor multiplies the data's lattice scale, in a fresh run and with --init-from
    (the base's scale replaced); factor 1 with --init-from keeps the base's."""
    script = load_script("training/train_diffusion.py")
    perov = head_csv(shared_data / "perov_5" / "val.csv", 16, tmp_path / "perov.csv")

    def denoiser(*sets):
        argv = _args(tmp_path / "run", f"dataset={perov}", *sets)
        cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
        train, _, _ = script.build_datasets(cfg)
        return script.build_components(cfg, train)["denoiser"], train

    plain, train = denoiser()
    data_scale, _ = script.data_statistics(train, 20)
    assert abs(plain.config.lattice_scale - data_scale) < 1e-9
    quarter, _ = denoiser("lattice_scale_factor=0.25")
    assert abs(quarter.config.lattice_scale - data_scale / 4) < 1e-9
    script.main(_args(tmp_path / "base", f"dataset={perov}"))
    base = tmp_path / "base" / "final"
    capsys.readouterr()
    rescaled, _ = denoiser(f"init_from={base}", "lattice_scale_factor=0.25")
    assert "lattice_scale" in capsys.readouterr().out
    assert abs(rescaled.config.lattice_scale - data_scale / 4) < 1e-9
    kept, _ = denoiser(f"init_from={base}")  # factor 1: the base's scale, as before
    assert abs(kept.config.lattice_scale - data_scale) < 1e-9
