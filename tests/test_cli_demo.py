"""``hfmat demo`` from a folder that is not the repository: the shipped models by name, files in the
chosen format with a summary.json each, a rerun replacing the previous demo but never other files,
and --checkpoints as an override."""

from __future__ import annotations

import json

from hfmat.cli import main


def test_demo_from_any_folder_reruns_and_refuses_foreign_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--composition", "SrTiO3", "-n", "1", "--steps", "2", "--format", "poscar"]
    assert main(argv) == 0  # default --out outputs/demo, relative to this folder
    out = tmp_path / "outputs" / "demo"
    diffusion = json.loads((out / "diffusion" / "summary.json").read_text())
    assert diffusion["command"] == "demo" and diffusion["model"] == "crystal-diffusion-perov5"
    assert [f["file"] for f in diffusion["files"]] == ["SrTiO3_0.vasp"]
    lm = json.loads((out / "lm" / "summary.json").read_text())
    assert lm["model"] == "cif-gpt2-perov5" and len(lm["files"]) == 1
    assert main(argv) == 0  # make demo twice: the second run replaces the first
    assert sorted(p.name for p in (out / "diffusion").iterdir()) == [
        "SrTiO3_0.vasp",
        "predictions.jsonl",
        "summary.json",
    ]
    (out / "lm" / "mine.txt").write_text("not the demo's")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out outputs/demo/lm already holds" in err and "mine.txt" in err
    assert (out / "lm" / "mine.txt").read_text() == "not the demo's"
    assert main([*argv, "--out", "other", "--checkpoints", str(tmp_path)]) == 2
    assert "--checkpoints" in capsys.readouterr().err and not (tmp_path / "other").exists()
