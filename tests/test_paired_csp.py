"""benchmarks/paired_csp.py: the exact McNemar test of two eval_lm_csp.py runs, target by target."""

from __future__ import annotations

import json

import pytest
from scripts import load_script


def _run(path, matched, valid):
    per = [
        {"id": f"t{i}", "matched_k1": m, "rms_k1": None, "valid": v}
        for i, (m, v) in enumerate(zip(matched, valid))
    ]
    path.write_text(json.dumps({"runs": [], "info": {"constrained": {"per_target_k1": per}}}))
    return str(path)


def test_exact_mcnemar_values():
    paired = load_script("benchmarks/paired_csp.py")
    assert paired.mcnemar_exact(0, 0) == 1.0
    assert paired.mcnemar_exact(5, 5) == 1.0
    assert paired.mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # all six discordant pairs one way
    assert paired.mcnemar_exact(74, 101) == pytest.approx(0.0492, abs=5e-4)


def test_counts_the_targets_each_run_alone_matches(tmp_path):
    paired = load_script("benchmarks/paired_csp.py")
    a = _run(tmp_path / "a.json", [1, 1, 0, 0, 1], [1, 1, 0, 1, 1])
    b = _run(tmp_path / "b.json", [1, 0, 1, 1, 1], [1, 1, 1, 1, 1])
    result = paired.main([a, b])
    assert result["matched_k1"]["first_only"] == 1 and result["matched_k1"]["second_only"] == 2
    assert result["matched_k1"]["first"] == 0.6 and result["matched_k1"]["second"] == 0.8
    assert result["valid"]["second_only"] == 1 and result["valid"]["first_only"] == 0
    # matched by a valid sample: a = t0, t1, t4; b = t0, t2, t3, t4
    assert result["valid_match"]["first"] == 0.6 and result["valid_match"]["second"] == 0.8
    assert result["valid_match"]["first_only"] == 1 and result["valid_match"]["second_only"] == 2
    c = _run(tmp_path / "c.json", [1, 1, 0, 0, 1], [0, 0, 0, 1, 1])  # a's matches, two of them invalid
    assert paired.main([a, c])["valid_match"] == {
        "first": 0.6, "second": 0.2, "first_only": 2, "second_only": 0, "p": 0.5,
    }  # fmt: skip
    other = _run(tmp_path / "d.json", [1, 1], [1, 1])
    with pytest.raises(SystemExit, match="not on the same targets"):
        paired.main([a, other])


def test_splits_the_comparison_by_whether_the_target_itself_is_valid(tmp_path):
    paired = load_script("benchmarks/paired_csp.py")
    a = paired.per_target(_run(tmp_path / "a.json", [1, 1, 0, 1, 0], [0, 1, 0, 1, 0]))
    b = paired.per_target(_run(tmp_path / "b.json", [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]))
    groups = {"t0": False, "t1": True, "t2": True, "t3": False, "t4": True}
    got = paired.by_group(a, b, groups)
    assert got["valid_targets"]["targets"] == 3 and got["invalid_targets"]["targets"] == 2
    assert got["valid_targets"]["matched_k1"]["second_only"] == 1  # t2
    assert got["invalid_targets"]["matched_k1"]["first_only"] == 1  # t0
    assert got["invalid_targets"]["matched_k1"]["first"] == 1.0
    with pytest.raises(SystemExit, match="not in the split"):
        paired.by_group(a, b, {"t0": True})


def test_target_validity_checks_the_splits_own_structures(tmp_path):
    import csv

    from pymatgen.core import Lattice, Structure

    paired = load_script("benchmarks/paired_csp.py")
    good = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    squeezed = good.copy()
    squeezed.translate_sites([1], [0.0, 0.0, 0.45])  # Ti 0.2 Å from an O: fails the bond check
    path = tmp_path / "split.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["material_id", "cif"])
        w.writeheader()
        w.writerow({"material_id": "good", "cif": good.to(fmt="cif")})
        w.writerow({"material_id": "squeezed", "cif": squeezed.to(fmt="cif")})
        w.writerow({"material_id": "garbage", "cif": "data_x\n_cell_length_a 3\n"})
    assert paired.target_validity(path) == {"good": True, "squeezed": False, "garbage": False}
