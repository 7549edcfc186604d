"""``hfmat evaluate`` end to end on a few perov-5 test structures, and the CIF validity summary."""

from __future__ import annotations

import csv
import json

import pytest

from hfmat.cif import cif_to_structure, structure_to_cif
from hfmat.cif.validity import check_validity
from hfmat.cli import main
from hfmat.evaluation import validity_summary


@pytest.fixture(scope="module")
def small_perov(perov_test_head):
    """A data dir holding the first 4 rows of perov_5/test.csv, and their structures."""
    with open(perov_test_head / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return perov_test_head, [(r["material_id"], cif_to_structure(r["cif"])) for r in rows]


def test_validity_summary_counts_per_check():
    good = structure_to_cif(cif_to_structure(structure_to_cif(_nacl())))
    reports = [check_validity(good), check_validity("data_x\n_cell_length_a 1\n"), None]
    s = validity_summary(reports)
    assert s["n"] == 3 and s["n_valid"] == 1 and s["validity"] == pytest.approx(1 / 3)
    assert s["mode"] == "subgroup"  # check_validity's default
    assert s["not_checked"] == 1
    parse = s["checks"][0]
    assert parse["name"] == "parse" and parse["n_run"] == 2 and parse["n_passed"] == 1
    assert parse["top_failures"][0]["count"] == 1
    assert all(c["n_passed"] == c["n_run"] == 1 for c in s["checks"][1:])


def _nacl():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_evaluate_csp_jsonl_with_bad_lines(small_perov, tmp_path):
    data_dir, targets = small_perov
    lines = []
    for mid, s in targets[:3]:  # the 4th target gets no prediction
        lines.append({"material_id": mid, "cif": structure_to_cif(s)})
        lines.append({"material_id": mid, "cif": structure_to_cif(_nacl())})
    lines.append({"material_id": targets[0][0], "cif": "data_broken\n_cell_length_a oops\n"})
    lines.append({"material_id": "not-a-target", "cif": structure_to_cif(_nacl())})
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    out = tmp_path / "out"
    rc = main(
        f"evaluate --task csp --predictions {preds} --reference perov_5:test --data-dir {data_dir} --k 3 "
        f"--all-targets --workers 1 --out {out} --no-progress".split()
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_targets"] == 4 and m["n_matched"] == 3 and m["match_rate"] == 0.75
    assert m["match_rate_k1"] == 0.75 and m["rmse"] < 0.01
    first = m["per_target"][0]
    assert first["n_candidates"] == 3 and first["candidates"][2]["valid"] is False
    assert "unparseable CIF" in first["candidates"][2]["reason"]
    issues = [i["issue"] for i in m["issues"]]
    assert any("not JSON" in i for i in issues) and any("not a target" in i for i in issues)
    assert any(i == "no prediction for this target" for i in issues)
    parse = m["cif_validity"]["checks"][0]  # 8 texts parsed (the non-JSON line has none), 1 broken
    assert m["cif_validity"]["n"] == 9 and parse["n_run"] == 8 and parse["n_passed"] == 7
    report = (out / "report.md").read_text()
    assert "| **hfmat (this run)** | 3 | 75.00 |" in report and "DiffCSP (published) | 20 | 98.60" in report
    for png in ("rms_hist.png", "density.png", "num_atoms.png", "validity_by_check.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_csp_folder_subset_and_generation(small_perov, tmp_path, monkeypatch):
    monkeypatch.setenv("HFMAT_CACHE", str(tmp_path / "cache"))
    data_dir, targets = small_perov
    folder = tmp_path / "cifs"
    folder.mkdir()
    for mid, s in targets[:2]:
        (folder / f"{mid}__0.cif").write_text(structure_to_cif(_nacl()))
        (folder / f"{mid}__1.cif").write_text(structure_to_cif(s))
    out = tmp_path / "csp"
    rc = main(
        f"evaluate --task csp --predictions {folder} --reference perov_5:test --data-dir {data_dir} --subset "
        f"--max-cif-checks 0 --workers 1 --out {out} --no-progress".split()
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert "cif_validity" not in m and any("skipped" in i["issue"] for i in m["issues"])
    assert m["n_targets"] == 2 and m["k"] == 2 and m["match_rate"] == 1.0 and m["match_rate_k1"] == 0.0
    out = tmp_path / "gen"
    rc = main(
        f"evaluate --task generation --predictions {folder} --reference perov_5:test --train perov_5:test "
        f"--data-dir {data_dir} --max-cif-checks 2 --workers 1 --out {out} --no-progress".split()
    )
    assert rc == 0
    g = json.loads((out / "metrics.json").read_text())
    assert g["n_generated"] == 4 and g["novelty"] == 0.5 and g["uniqueness"] == pytest.approx(3 / 4)
    assert g["cov_recall"] == pytest.approx(0.5) and g["wdist_density"] > 0
    assert g["cif_validity"]["n"] == 2 and g["cif_validity"]["sampled_from"] == 4
    assert "COV-R %" in (out / "report.md").read_text()


def test_evaluate_missing_predictions_is_a_clear_error(small_perov, tmp_path, capsys):
    data_dir, _ = small_perov
    rc = main(
        [
            "evaluate",
            "--task",
            "csp",
            "--predictions",
            str(tmp_path / "nope.jsonl"),
            "--reference",
            "perov_5:test",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "predictions not found" in capsys.readouterr().err


def test_read_predictions_forms(tmp_path):
    from datasets import Dataset, DatasetDict

    from hfmat.evaluation.io import candidates_of, parse_cifs, read_predictions, split_source

    text = structure_to_cif(_nacl())
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("mp-1__10.cif", "mp-1__2.cif", "mp-2.cif"):
        (folder / name).write_text(text)
    recs = read_predictions(folder)
    assert [(r.material_id, r.index) for r in recs] == [("mp-1", 10), ("mp-1", 2), ("mp-2", None)]
    cands, issues = candidates_of(recs, parse_cifs([r.cif for r in recs], workers=1, progress=False))
    assert len(cands["mp-1"]) == 2 and len(cands["mp-2"]) == 1 and issues == []

    saved = tmp_path / "saved"
    DatasetDict({"test": Dataset.from_dict({"material_id": ["a", "a"], "cif": [text, text]})}).save_to_disk(
        saved
    )
    recs = read_predictions(f"{saved}:test")
    assert [r.material_id for r in recs] == ["a", "a"] and all(r.cif == text for r in recs)
    with pytest.raises(ValueError, match="no split 'val'"):
        read_predictions(f"{saved}:val")
    assert split_source("perov_5:test") == ("perov_5", "test")
    assert split_source("/data/x") == ("/data/x", None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .cif files"):
        read_predictions(empty)


def test_evaluate_empty_prediction_file_is_an_error(small_perov, tmp_path, capsys):
    data_dir, _ = small_perov
    preds = tmp_path / "empty.jsonl"
    preds.write_text("")
    out = tmp_path / "o"
    argv = f"evaluate --task csp --predictions {preds} --reference perov_5:test --data-dir {data_dir} "
    rc = main((argv + f"--workers 1 --out {out} --no-progress").split())
    assert rc == 2 and "the prediction set is empty" in capsys.readouterr().err
    assert not out.exists()  # no empty output folder left behind
    preds.write_text("not json\n{}\n")
    rc = main((argv + f"--workers 1 --out {out} --no-progress").split())
    assert rc == 2 and "none of its 2 entries could be read" in capsys.readouterr().err and not out.exists()


def test_evaluate_refuses_predictions_that_pair_with_no_target(small_perov, tmp_path, capsys):
    data_dir, _ = small_perov
    preds = tmp_path / "p.jsonl"
    text = structure_to_cif(_nacl())
    preds.write_text("".join(json.dumps({"material_id": f"x{i}", "cif": text}) + "\n" for i in range(5)))
    out = tmp_path / "o"
    argv = f"evaluate --task csp --predictions {preds} --reference perov_5:test --data-dir {data_dir} "
    assert main((argv + f"--all-targets --workers 1 --out {out} --no-progress").split()) == 2
    err = capsys.readouterr().err
    assert "0 of its 5 material_ids (x0, x1, x2 ...) is a target of perov_5:test (4 targets" in err
    preds.write_text(json.dumps({"cif": text}) + "\n")  # no ids at all: a generation set
    assert main((argv + f"--workers 1 --out {out} --no-progress").split()) == 2
    assert "no prediction has a material_id" in capsys.readouterr().err and not out.exists()


def test_evaluate_scores_only_the_targets_with_predictions_by_default(small_perov, tmp_path, capsys):
    data_dir, targets = small_perov
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(json.dumps({"material_id": m, "cif": structure_to_cif(s)}) + "\n" for m, s in targets[:2])
    )
    argv = f"evaluate --task csp --predictions {preds} --reference perov_5:test --data-dir {data_dir} "
    assert main((argv + f"--workers 1 --max-cif-checks 0 --out {tmp_path / 'a'} --no-progress").split()) == 0
    out = capsys.readouterr().out
    assert "targets: 2 of the reference's 4 (the targets that have predictions; --all-targets" in out
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["n_targets"] == 2 and m["n_reference_targets"] == 4 and m["match_rate"] == 1.0
    argv += f"--all-targets --workers 1 --max-cif-checks 0 --out {tmp_path / 'b'} --no-progress"
    assert main(argv.split()) == 0
    assert "targets: 4 of the reference's 4 (every reference target" in capsys.readouterr().out
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["n_targets"] == 4 and m["match_rate"] == 0.5
