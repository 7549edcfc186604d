"""The run folder rule of the sampling commands (hfmat.cli.outputs): a new or empty folder, or an
earlier run of the same command replaced with --overwrite; other files are never touched."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from hfmat.cli.outputs import RunWriter, check_out


def _nacl():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _run(folder, command, replace=()):
    writer = RunWriter(folder, command, "cif", {"model": "m"}, list(replace))
    writer.add("0000_NaCl", _nacl(), {"prompt": "NaCl", "material_id": "mp-1", "sample": 0, "valid": True})
    writer.add(
        "0001_NaCl", None, {"prompt": "NaCl", "material_id": "mp-1", "sample": 1, "valid": False}, "data_x"
    )
    writer.finish()
    return writer


def test_new_folder_gets_every_file_listed(tmp_path):
    out = tmp_path / "a" / "b"
    assert check_out(out, "generate", overwrite=False) == [] and not out.exists()
    _run(out, "generate")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "generate" and summary["n_files"] == 2 and summary["n_valid"] == 1
    assert [(f["file"], f["format"]) for f in summary["files"]] == [
        ("0000_NaCl.cif", "cif"),
        ("0001_NaCl.lm.txt", "lm-text"),
    ]
    assert (out / "0001_NaCl.lm.txt").read_text() == "data_x"  # nothing silently lost
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(x["material_id"], x["sample"], x["file"]) for x in lines] == [
        ("mp-1", 0, "0000_NaCl.cif"),
        ("mp-1", 1, "0001_NaCl.lm.txt"),
    ]
    assert lines[0]["cif"] == (out / "0000_NaCl.cif").read_text() and lines[1]["cif"] == "data_x"
    assert len(Structure.from_str(lines[0]["cif"], fmt="cif")) == 8  # the whole conventional cell


def test_another_commands_run_is_refused_even_with_overwrite(tmp_path):
    _run(tmp_path, "generate")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"--out .* already holds .*an earlier `hfmat generate` run"):
            check_out(tmp_path, "diffuse", overwrite)


def test_same_command_needs_overwrite_and_replaces_only_its_files(tmp_path):
    _run(tmp_path, "generate")
    with pytest.raises(ValueError, match="choose a new folder with --out .* or pass --overwrite"):
        check_out(tmp_path, "generate", overwrite=False)
    replace = check_out(tmp_path, "generate", overwrite=True)
    writer = RunWriter(tmp_path, "generate", "poscar", {}, replace)
    writer.add("0000_NaCl", _nacl(), {"prompt": "NaCl", "valid": True})
    writer.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0000_NaCl.vasp",
        "predictions.jsonl",
        "summary.json",
    ]
    assert "material_id" not in json.loads((tmp_path / "predictions.jsonl").read_text())


def test_files_of_someone_else_are_never_replaced(tmp_path):
    _run(tmp_path, "generate")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--overwrite does not apply: notes.txt"):
        check_out(tmp_path, "generate", overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.cif").write_text("")
    with pytest.raises(
        ValueError, match=r"already holds x.cif: choose a new folder with --out \(e.g. --out other-2\)$"
    ):
        check_out(other, "generate", overwrite=True)
    file = tmp_path / "notes.txt"
    with pytest.raises(ValueError, match="is a file"):
        check_out(file, "generate", overwrite=False)


def test_printing_instead_of_writing(capsys):
    writer = _run(None, "diffuse")
    out = capsys.readouterr().out
    assert "_cell_length_a" in out and "data_x" in out and len(writer.entries) == 2
