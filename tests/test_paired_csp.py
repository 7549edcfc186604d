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
    other = _run(tmp_path / "c.json", [1, 1], [1, 1])
    with pytest.raises(SystemExit, match="not on the same targets"):
        paired.main([a, other])
