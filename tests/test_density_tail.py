"""benchmarks/density_tail.py: the density EMD's parts (all, a seeded draw, the tail clipped), the
distorted-cell rule, and a run on saved samples against a few Perov-5 rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from csv_head import head_csv
from pymatgen.core import Lattice, Structure
from scipy.stats import wasserstein_distance
from scripts import load_script

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered", "ignore:No Pauling electronegativity")


def _tail():
    return load_script("benchmarks/density_tail.py")


def test_emd_figures_separate_the_tail():
    tail = _tail()
    rng = np.random.default_rng(0)
    ref = np.linspace(2.0, 12.0, 500)
    gen = np.concatenate([rng.uniform(3.0, 11.0, 200), [80.0, 40.0]])  # two collapsed cells
    out = tail.emd_figures(gen, ref, draw=100, seed=0)
    assert out["all"] == pytest.approx(wasserstein_distance(gen, ref))
    assert out["outside_range"] == 2
    # clipping the two to the reference's maximum removes most of the distance they add
    assert out["clipped"] < out["all"] - 0.5 * (80 + 40 - 2 * ref.max()) / len(gen)
    pick = np.random.default_rng(0).choice(len(gen), 100, replace=False)
    assert out["draw"] == pytest.approx(wasserstein_distance(gen[pick], ref))
    assert out["draw_outside_range"] == int((gen[pick] > ref.max()).sum())


def test_distorted_is_an_angle_off_90():
    tail = _tail()
    assert not tail.distorted({"angles": [90.0, 90.4, 89.7]})
    assert tail.distorted({"angles": [90.0, 96.0, 90.0]})
    assert tail.distorted({"angles": [60.0, 90.0, 90.0]})


def _cubic(a: float) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"], coords)


@pytest.fixture
def perov_rows(shared_data, tmp_path):
    """perov_5/{test,val}.csv with their first 8 rows."""
    out = tmp_path / "data" / "perov_5"
    out.mkdir(parents=True)
    for split in ("test", "val"):
        head_csv(shared_data / "perov_5" / f"{split}.csv", 8, out / f"{split}.csv")
    return out.parent


def test_main_reads_saved_samples_and_lists_the_densest(perov_rows, tmp_path, capsys):
    tail = _tail()
    sheared = Structure(
        Lattice.from_parameters(3.2, 3.4, 3.0, 70, 95, 120),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    samples = [_cubic(3.9), _cubic(4.1), sheared]
    path = tmp_path / "samples.json"
    path.write_text(json.dumps([s.as_dict() for s in samples]))
    result = tail.main(
        ["--load", str(path), "--data-dir", str(perov_rows), "--train-split", "val", "--tail", "2"]
    )
    assert result["n"] == 3 and result["n_valid"] == 3
    densities = [s.density for s in samples]
    assert [r["density"] for r in result["tail"]] == pytest.approx(sorted(densities, reverse=True)[:2])
    assert result["tail"][0]["angles"] == [70.0, 95.0, 120.0]
    assert result["emd"]["distorted"] == 1
    printed = capsys.readouterr().out
    assert "| density g/cm^3 |" in printed and "val (training)" in printed
