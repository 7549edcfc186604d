"""benchmarks/csp_rms_breakdown.py: tight and loose k=1 matches per space group, and the round trip
through --save / --load."""

from __future__ import annotations

import json

import pytest
from scripts import load_script


def _rows():
    return [
        {"material_id": "a", "space_group": 221, "rms": [0.01, None]},
        {"material_id": "b", "space_group": 221, "rms": [0.45, 0.02]},
        {"material_id": "c", "space_group": 99, "rms": [None, None]},
        {"material_id": "d", "space_group": 99, "rms": [None, 0.3]},
        {"material_id": "e", "space_group": 221, "rms": [0.03, 0.04]},
    ]


def test_breakdown_separates_loose_matches_and_groups_by_space_group():
    b = load_script("benchmarks/csp_rms_breakdown.py").breakdown(_rows(), loose=0.2)
    assert b["targets"] == 5 and b["matched_k1"] == 3
    assert b["rmse_k1"] == pytest.approx((0.01 + 0.45 + 0.03) / 3)
    assert b["loose_k1"] == 1 and b["rmse_k1_without_loose"] == pytest.approx(0.02)
    assert (
        b["histogram"]["0.0-0.02"] == 1
        and b["histogram"]["0.02-0.05"] == 1
        and b["histogram"]["0.4-0.5"] == 1
    )
    by = {g["space_group"]: g for g in b["per_space_group"]}
    assert [g["space_group"] for g in b["per_space_group"]] == [221, 99]  # most targets first
    assert by[221]["match_k1"] == pytest.approx(100.0) and by[221]["loose_k1"] == pytest.approx(100 / 3)
    assert (
        by[99]["match_k1"] == 0.0 and by[99]["rmse_k1"] is None and by[99]["match_any"] == pytest.approx(50.0)
    )


def test_main_reads_saved_rows(tmp_path, capsys):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(_rows()))
    b = load_script("benchmarks/csp_rms_breakdown.py").main(["--load", str(path), "--loose", "0.5"])
    assert b["loose_k1"] == 0
    out = capsys.readouterr().out
    assert "5 targets, 3 matched at k=1" in out and "| 221 | 3 | 100.0 |" in out
