import os
import subprocess
import sys

import pytest

from hfmat.chemistry import (
    ELEMENTS,
    atomic_number,
    element_symbol,
    space_group_number,
    space_group_symbol,
    space_group_symbols,
)
from hfmat.cli import COMMANDS, main
from hfmat.examples import example_structures


def test_offline_environment_is_set_before_hf_imports():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE


def test_element_table():
    assert len(ELEMENTS) == 118 and ELEMENTS[0] == "H" and ELEMENTS[-1] == "Og"
    assert atomic_number("Zn") == 30 and element_symbol(30) == "Zn"
    with pytest.raises(ValueError, match="Xx"):
        atomic_number("Xx")
    with pytest.raises(ValueError):
        element_symbol(0)


def test_space_group_table_matches_pymatgen_writer():
    symbols = space_group_symbols()
    assert len(symbols) == 230 == len(set(symbols))
    assert space_group_symbol(221) == "Pm-3m" and space_group_number("P4_2/mnm") == 136
    assert space_group_symbol(14) == "P2_1/c"
    for name, s in example_structures().items():
        sym, num = s.get_space_group_info(symprec=0.1)
        assert space_group_number(sym) == num, name
    with pytest.raises(ValueError, match="Pm-3x"):
        space_group_number("Pm-3x")


def test_examples_on_disk_match_the_builder(examples_dir):
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    built = example_structures()
    assert sorted(p.stem for p in examples_dir.glob("*.cif")) == sorted(built)
    matcher = StructureMatcher()
    for name, s in built.items():
        assert matcher.fit(s, Structure.from_file(examples_dir / f"{name}.cif")), name


def test_cli_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "hfmat.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_demo_runs_end_to_end_on_the_shipped_models(capsys, tmp_path):
    assert main(["demo", "--composition", "SrTiO3", "-n", "1", "--steps", "20", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SrTiO3_perovskite" in out and "False" not in out.split("2.")[0]  # every example round-trips
    assert (tmp_path / "diffusion" / "SrTiO3_0.cif").is_file()
    assert len(list((tmp_path / "lm").glob("*.cif"))) == 1
