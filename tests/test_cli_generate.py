"""``hfmat generate`` with the shipped CIF language model: reference prompts whose predictions.jsonl
``hfmat evaluate`` reads, files in each format, raw text kept for a sample with no structure, the
out-of-distribution warning, and the run-folder rule."""

from __future__ import annotations

import csv
import json

from pymatgen.core import Structure

from hfmat.cli import main


def test_reference_run_writes_what_evaluate_reads(perov_test_head, tmp_path, capsys):
    out = tmp_path / "lm"
    data = str(perov_test_head)
    argv = ["generate", "--reference", "perov_5:test", "--data-dir", data, "--limit", "2", "-n", "1"]
    argv += ["--batch-size", "2", "--threads", "1", "--seed", "3", "--format", "poscar", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "generate" and summary["model"] == "cif-gpt2-perov5"
    assert summary["reference"] == "perov_5:test" and summary["format"] == "poscar"
    with open(perov_test_head / "test.csv", newline="") as f:
        ids = [row["material_id"] for row in csv.DictReader(f)]
    files = summary["files"]
    assert [(f["material_id"], f["sample"]) for f in files] == [(ids[0], 0), (ids[1], 0)]
    for f in files:
        assert (out / f["file"]).is_file() and f["format"] in ("poscar", "lm-text")
        if f["format"] == "poscar":
            assert len(Structure.from_file(out / f["file"])) == 5
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(x["material_id"], x["sample"], x["file"]) for x in lines] == [
        (f["material_id"], f["sample"], f["file"]) for f in files
    ]
    # (evaluate reading a run's predictions.jsonl: tests/test_cli_diffuse.py, test_readme_commands.py)
    # diffuse may not write into generate's folder: summary.json must only ever describe one run
    capsys.readouterr()
    assert main(["diffuse", "-c", "SrTiO3", "--steps", "2", "--out", str(out)]) == 2
    assert "an earlier `hfmat generate` run" in capsys.readouterr().err


def test_sample_without_structure_is_kept_and_ood_prompt_warned(tmp_path, capsys):
    out = tmp_path / "o"
    argv = [
        "generate",
        "--composition",
        "NaCl",
        "--composition",
        "SrTiO3",
        "-n",
        "1",
        "--max-new-tokens",
        "5",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "hfmat generate: warning: NaCl (2 atoms in the cell) is outside what the model was trained on" in err
    )
    assert "Trained on perov_5" in err and err.count("warning:") == 1  # none for SrTiO3
    assert sorted(p.name for p in out.iterdir()) == [
        "0000_Na1Cl1.lm.txt",
        "0001_Sr1Ti1O3.lm.txt",
        "predictions.jsonl",
        "summary.json",
    ]
    files = json.loads((out / "summary.json").read_text())["files"]
    assert [(f["format"], f["valid"], f["finished"]) for f in files] == [("lm-text", False, False)] * 2
    text = (out / "0001_Sr1Ti1O3.lm.txt").read_text()
    assert text.startswith("data_Sr1Ti1O3\n")
    assert json.loads((out / "predictions.jsonl").read_text().splitlines()[1])["cif"] == text
    # a rerun into the same folder: refused, then replaced with --overwrite (other files untouched)
    assert main([*argv[:3], "-n", "1", "--max-new-tokens", "5", "--out", str(out)]) == 2
    assert "or pass --overwrite to replace that run" in capsys.readouterr().err
    assert main([*argv[:3], "-n", "1", "--max-new-tokens", "5", "--overwrite", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "0000_Na1Cl1.lm.txt",
        "predictions.jsonl",
        "summary.json",
    ]
