"""benchmarks/fingerprint_precision.py: nearest-reference fingerprint distances and the noise rows."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scripts import load_script

pytest.importorskip("matminer")


def _diamond() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(3.567), ["C"], [[0, 0, 0]])


def test_noise_moves_every_atom_and_keeps_the_cell():
    bench = load_script("benchmarks/fingerprint_precision.py")
    s = _diamond()
    (noisy,) = bench.perturbed([s], 0.1, np.random.default_rng(0))
    shift = np.linalg.norm(noisy.cart_coords - s.cart_coords, axis=1)
    assert len(noisy) == len(s) and noisy.lattice == s.lattice
    assert noisy.composition == s.composition
    assert (shift > 0).all() and 0.05 < shift.mean() < 0.3  # sigma 0.1 per component: mean ~0.16


def test_a_crystal_is_within_the_threshold_of_itself_and_noise_pushes_it_out():
    bench = load_script("benchmarks/fingerprint_precision.py")
    from hfmat.evaluation.fingerprints import fingerprint

    s = _diamond()
    reference = np.array([fingerprint(s)[0]])
    same = bench.row("same", [s], reference, 0.2, workers=1)
    assert same["within_cutoff"] == 1.0 and same["quantiles"]["0.5"] == pytest.approx(0.0, abs=1e-6)
    assert same["median_shortest_distance"] == pytest.approx(1.545, abs=0.01)  # diamond C-C
    noisy = bench.perturbed([s] * 8, 0.3, np.random.default_rng(1))
    far = bench.row("noisy", noisy, reference, 0.2, workers=1)
    assert far["quantiles"]["0.5"] > 0.2 and far["within_cutoff"] < 1.0
