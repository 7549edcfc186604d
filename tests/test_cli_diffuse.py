"""``hfmat diffuse`` with the shipped pipelines (a few steps): --model and its positional alias,
formats, reference prompts for ``hfmat evaluate``, the de novo default, errors that name flags and
the out-of-distribution warning."""

from __future__ import annotations

import json
import re

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


TEXT = ["--model", "crystal-diffusion-perov5-text", "--steps", "5", "--seed", "3", "--threads", "1"]
PROMPTS = ["--prompt", "SrTiO3, a cubic crystal", "--prompt", "BaZrO3"]


def test_rerank_keeps_the_candidates_most_similar_to_the_prompt(tmp_path, capsys):
    """--rerank: the -n kept of --candidates are the plain run's samples (same seed) that Crystal CLIP
    scores highest against their prompt, best first, with their similarity and rank recorded."""
    from pymatgen.core import Structure

    from hfmat.text import CrystalCLIP, clip_similarity

    kept, drawn = tmp_path / "kept", tmp_path / "drawn"
    rerank = ["--rerank", "crystal-clip-perov5", "--candidates", "4"]
    assert main(["diffuse", *TEXT, *PROMPTS, "-n", "2", *rerank, "--out", str(kept)]) == 0
    assert main(["diffuse", *TEXT, *PROMPTS, "-n", "4", "--out", str(drawn)]) == 0
    assert "CLIP" in capsys.readouterr().out
    summary = json.loads((kept / "summary.json").read_text())
    assert summary["rerank"] == "crystal-clip-perov5" and summary["candidates"] == 4
    assert summary["n_files"] == 4 and len(list(kept.glob("*.cif"))) == 4
    candidates = json.loads((drawn / "summary.json").read_text())["files"]
    clip = CrystalCLIP.from_pretrained("crystal-clip-perov5")
    for i, prompt in enumerate(["SrTiO3, a cubic crystal", "BaZrO3"]):
        files = summary["files"][2 * i : 2 * i + 2]
        assert [f["prompt"] for f in files] == [prompt] * 2 and [f["clip_rank"] for f in files] == [1, 2]
        for f in files:  # the very sample the plain run drew as this candidate
            source = drawn / candidates[4 * i + f["candidate"]]["file"]
            assert (kept / f["file"]).read_text() == source.read_text()
        own = [Structure.from_file(drawn / c["file"]) for c in candidates[4 * i : 4 * i + 4]]
        similarity = sorted(clip_similarity(clip, prompt, own).tolist(), reverse=True)
        recorded = [f["clip_similarity"] for f in files]
        assert recorded == sorted(recorded, reverse=True)
        assert all(abs(a - b) < 2e-3 for a, b in zip(recorded, similarity[:2])), (recorded, similarity)


def test_rerank_errors_name_the_flags(capsys):
    cases = [
        (["--rerank", "crystal-clip-perov5", "-n", "2"], "--rerank needs --prompt"),
        ([*PROMPTS, "-n", "2", "--candidates", "4"], "--candidates needs --rerank"),
        (
            [*PROMPTS, "-n", "3", "--rerank", "crystal-clip-perov5", "--candidates", "2"],
            "--candidates 2 is fewer than -n 3",
        ),
        (
            [*PROMPTS, "--rerank", "crystal-diffusion-perov5-text"],
            "--rerank crystal-diffusion-perov5-text: .* is not a Crystal CLIP folder: it has no clip_config.json",
        ),
        (
            [*PROMPTS, "--rerank", "crystal-clip-perov5", "--candidates", "0"],
            "--candidates must be at least 1",
        ),
    ]
    for flags, message in cases:
        assert main(["diffuse", *TEXT, *flags]) == 2, flags
        assert re.search(message, capsys.readouterr().err), (flags, message)
