"""``hfmat diffuse`` with the shipped pipelines (a few steps): --model and its positional alias,
formats, reference prompts for ``hfmat evaluate``, the de novo default, errors that name flags and
the out-of-distribution warning."""

from __future__ import annotations

import json

from hfmat.cli import main

FAST = ["--steps", "3", "--corrector-steps", "0"]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_model_flag_and_positional_alias_agree(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    argv = ["-c", "SrTiO3", "-n", "2", *FAST, "--seed", "5", "--batch-size", "2", "--threads", "1"]
    assert main(["diffuse", "crystal-diffusion-perov5", *argv, "--out", str(a)]) == 0
    assert main(["diffuse", "--model", "crystal-diffusion-perov5", *argv, "--out", str(b)]) == 0
    assert _files(a) == _files(b) and "0000_Sr1Ti1O3.cif" in _files(a)
    capsys.readouterr()
    assert (
        main(["diffuse", "crystal-diffusion-perov5", "--model", "crystal-diffusion-perov5-gen", "-n", "1"])
        == 2
    )
    assert "two models given" in capsys.readouterr().err


def test_extxyz_and_reference_prompts(perov_test_head, tmp_path, capsys):
    from ase.io import read

    out = tmp_path / "d"
    data = str(perov_test_head)
    argv = ["diffuse", "--reference", "perov_5:test", "--data-dir", data, "--limit", "3", *FAST]
    assert main([*argv, "--format", "extxyz", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "diffuse" and summary["model"] == "crystal-diffusion-perov5"
    assert [f["file"][-7:] for f in summary["files"]] == [".extxyz"] * 3
    assert all(len(read(out / f["file"])) == 5 for f in summary["files"])
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x["material_id"] for x in lines] == [f["material_id"] for f in summary["files"]]
    assert all("_cell_length_a" in x["cif"] for x in lines)  # evaluate reads CIF whatever --format
    capsys.readouterr()
    ev = ["evaluate", "--task", "csp", "--predictions", str(out / "predictions.jsonl")]
    ev += ["--reference", "perov_5:test", "--data-dir", data, "--workers", "1", "--no-progress"]
    assert main([*ev, "--out", str(tmp_path / "e")]) == 0
    assert "targets: 3 of the reference's 4" in capsys.readouterr().out


def test_de_novo_default_and_printing(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["diffuse", "-n", "2", *FAST, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "crystal-diffusion-perov5-gen" and summary["n_files"] == 2
    assert summary["files"][0]["prompt"].startswith("de novo")
    capsys.readouterr()
    assert main(["diffuse", "-c", "SrTiO3", *FAST]) == 0  # no --out: the structure on stdout
    captured = capsys.readouterr()
    assert captured.out.count("_cell_length_a") == 1 and "0000_Sr1Ti1O3.cif" in captured.err


def test_errors_name_flags_and_ood_warns(tmp_path, capsys):
    assert main(["diffuse", "--model", "crystal-diffusion-perov5", "-n", "1", *FAST]) == 2
    err = capsys.readouterr().err
    assert "(pass --composition)" in err and "compositions" not in err
    assert main(["diffuse", "-c", "SrXx3", *FAST]) == 2
    assert "--composition #1: composition 'SrXx3': unknown element 'Xx'" in capsys.readouterr().err
    assert main(["diffuse", "-c", "NaCl", *FAST, "--out", str(tmp_path / "n")]) == 0
    err = capsys.readouterr().err
    assert "hfmat diffuse: warning: NaCl (2 atoms in the cell)" in err
    assert "its training cells have 5 atoms, not 2" in err and "Cl never occurs" in err
