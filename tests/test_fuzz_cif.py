"""benchmarks/fuzz_cif.py in the suite (issue 18): seeded mutants of real CIFs give no crash, no
hang, no invalid structure accepted by the reader and none called valid by the checks, by the
benchmark's independent oracle. A few hundred mutants here; more in the slow test and the script."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIMIT = 10.0  #: seconds; the time limit the reader and the checks run under here


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_cif", REPO / "benchmarks" / "fuzz_cif.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sources(fuzz):
    return fuzz.source_texts(shared_rows=3)


def test_oracle_calls_broken_cells_and_sites_invalid(fuzz, examples_dir):
    """The oracle itself: what it must flag, and a well-formed file it must not."""
    text = (examples_dir / "TiO2_rutile.cif").read_text()
    assert fuzz.oracle(text) is None
    cases = {
        ("_cell_length_a   4.59400000", "_cell_length_a   nan"): "_cell_length_a",
        ("_cell_length_b   4.59400000", "_cell_length_b   -4.594"): "_cell_length_b",
        ("_cell_angle_gamma   90.00000000", "_cell_angle_gamma   180"): "_cell_angle_gamma",
        ("Ti  Ti1  1  0.50000000  0.50000000  0.50000000  1", "Ti  Ti1  1  0.5  0.5  0.5  1.5"): "occupancy",
        ("Ti  Ti1  1  0.50000000", "Xq  Ti1  1  0.50000000"): "unknown element",
        ("Ti  Ti1  1  0.50000000  0.50000000", "Ti  Ti1  1  0.50000000  inf"): "fract_y",
    }
    for (old, new), reason in cases.items():
        assert old in text
        assert reason in fuzz.oracle(text.replace(old, new))
    flat = text
    for angle in ("alpha", "beta", "gamma"):
        flat = flat.replace(f"_cell_angle_{angle}   90.00000000", f"_cell_angle_{angle}   120")
    assert "metric tensor" in fuzz.oracle(flat)


def test_every_kind_of_mutation_changes_the_text(fuzz, sources):
    import random

    rng = random.Random(0)
    text = sources[0]
    for kind in fuzz.KINDS:
        assert any(fuzz.mutate(text, kind, rng) != text.encode() for _ in range(5)), kind


def test_a_few_hundred_mutants_give_no_crash_hang_or_wrong_acceptance(fuzz, sources, monkeypatch):
    """300 seeded mutants, each read and checked in this process's worker (about 30 s on one
    core); a crash of the worker would show as a CifError, one of this process as a failed run."""
    monkeypatch.setenv("HFMAT_CIF_TIME_LIMIT", str(LIMIT))
    mutants = fuzz.make_mutants(sources, 300, seed=18)
    kinds = {kind for name, _ in mutants for kind in name.split("+")}
    assert kinds == set(fuzz.KINDS)
    problems, invalid = [], 0
    for i, (name, data) in enumerate(mutants):
        text = fuzz.decode(data)
        start = time.perf_counter()
        outcome = fuzz.run_one(text)
        if time.perf_counter() - start > 2 * LIMIT + 10:
            problems.append((i, name, "hang"))
        problems += [(i, name, problem) for problem in fuzz.judge(text, outcome)]
        invalid += fuzz.oracle(text) is not None
    assert invalid > 50  # the mutants do break things
    assert problems == []


@pytest.mark.slow
def test_a_thousand_mutants_in_a_watched_harness_process(fuzz, sources):
    """The benchmark's own harness (a process it watches, restarted on a crash or hang): all four
    counts 0 over 1000 other mutants (about 2 minutes on one core; the script runs 10,000)."""
    counts, bad = fuzz.fuzz(fuzz.make_mutants(sources, 1000, seed=1818), limit=LIMIT, grace=20, jobs=1)
    assert counts["mutants"] == 1000
    assert {k: counts[k] for k in ("crash", "hang", "accepted-invalid", "wrongly-valid")} == {
        "crash": 0,
        "hang": 0,
        "accepted-invalid": 0,
        "wrongly-valid": 0,
    }, [(b["index"], b["kinds"], b["problem"]) for b in bad[:10]]
