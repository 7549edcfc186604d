"""Bad input does not take a run down (issue 21): a NaN or degenerate cell is refused by the
reader before spglib sees it (spglib crashes the process on one), ``hfmat evaluate`` and
``load_crystal_dataset`` skip such a prediction or row by name, and the loader reads hfmat's own
files (canonical and standard P1) through ``hfmat.cif.cif_to_structure``.

Every call that used to crash runs in a subprocess, so a segmentation fault fails the test
instead of killing pytest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from hfmat.cif import CifError, cif_to_structure, structure_to_standard_cif

SRTIO3 = Structure(
    Lattice.cubic(3.905),
    ["Sr", "Ti", "O", "O", "O"],
    [[0.5] * 3, [0] * 3, [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
)


def _standard(structure: Structure = SRTIO3) -> str:
    return structure_to_standard_cif(structure)


def _with_ops(text: str) -> str:
    """The text with an inversion added to its symmetry loop: no longer the identity alone, so the
    reader hands it to pymatgen (the path that let a NaN cell through)."""
    return text.replace("  1  'x, y, z'", "  1  'x, y, z'\n  2  '-x, -y, -z'")


def _bad(field: str, value: str, text: str | None = None) -> str:
    text = text or _standard()
    lines = [f"{field}   {value}" if line.startswith(field) else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def _run(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("_cell_length_a", "nan", "_cell_length_a: .?nan.? is not a finite number"),
        ("_cell_length_b", "inf", "_cell_length_b"),
        ("_cell_length_c", "-4", "_cell_length_c: -4.0 is outside"),
        ("_cell_angle_alpha", "nan", "_cell_angle_alpha"),
        ("_cell_angle_beta", "0", "_cell_angle_beta"),
        ("_cell_angle_gamma", "200", "_cell_angle_gamma"),
    ],
)
@pytest.mark.parametrize("symmetry", ["identity", "operations"])
def test_reader_refuses_impossible_cells_on_both_paths(field, value, message, symmetry):
    text = _bad(field, value)
    text = _with_ops(text) if symmetry == "operations" else text
    with pytest.raises(CifError, match=message):
        cif_to_structure(text)


def test_reader_refuses_a_flat_cell():
    # angles that sum to 360 degrees: every length positive, every angle in (0, 180), no volume
    text = _with_ops(
        _bad("_cell_angle_gamma", "120", _bad("_cell_angle_beta", "120", _bad("_cell_angle_alpha", "120")))
    )
    with pytest.raises(CifError, match="no lattice|volume"):
        cif_to_structure(text)


def _evaluate(tmp_path: Path, predictions: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    preds, ref = tmp_path / "preds", tmp_path / "ref"
    preds.mkdir()
    ref.mkdir()
    (ref / "srtio3.cif").write_text(_standard())
    for name, text in predictions.items():
        (preds / name).write_text(text)
    out = tmp_path / "eval"
    code = "import sys; from hfmat.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["evaluate", "--task", "csp", "--predictions", str(preds), "--reference", str(ref)]
    proc = _run(code, *args, "--out", str(out), "--workers", "1", "--no-progress")
    return proc, out


def test_evaluate_skips_a_nan_cell_prediction_by_name(tmp_path):
    nan_cif = _with_ops(_bad("_cell_length_a", "nan"))
    proc, out = _evaluate(tmp_path, {"srtio3__0.cif": nan_cif, "srtio3__1.cif": _standard()})
    assert proc.returncode == 0, proc.stderr[-2000:]  # was -11: spglib on a NaN lattice
    assert "skipped 1 of 2 predictions" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_unreadable"] == 1 and metrics["match_rate"] == 1.0
    skipped = [i for i in metrics["issues"] if i["issue"].startswith("skipped")]
    assert len(skipped) == 1 and skipped[0]["source"].endswith("srtio3__0.cif")
    assert "_cell_length_a" in skipped[0]["issue"]


def test_evaluate_exits_2_when_no_prediction_reads(tmp_path):
    proc, out = _evaluate(tmp_path, {"srtio3__0.cif": _with_ops(_bad("_cell_length_a", "nan"))})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "none of its 1 predictions could be read" in proc.stderr
    assert "srtio3__0.cif" in proc.stderr and "_cell_length_a" in proc.stderr
    assert not out.exists()


_LOAD = """
import json, sys, warnings
from hfmat.data import load_crystal_dataset
warnings.simplefilter("ignore")
ds, stats = load_crystal_dataset(sys.argv[1], return_stats=True)
split = next(iter(ds))
print(json.dumps({"rows": ds[split].to_list(), "skipped": stats[split].skipped}))
"""


def _load(source: Path) -> dict:
    proc = _run(_LOAD, str(source))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_loader_skips_a_nan_cell_row_in_a_folder_and_a_csv(tmp_path):
    import csv

    nan_cif = _with_ops(_bad("_cell_length_a", "nan"))
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "good.cif").write_text(_standard())
    (folder / "bad.cif").write_text(nan_cif)
    table = tmp_path / "rows.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["material_id", "cif"])
        writer.writeheader()
        writer.writerows(
            [{"material_id": "good", "cif": _standard()}, {"material_id": "bad", "cif": nan_cif}]
        )
    for source in (folder, table):
        loaded = _load(source)
        assert [r["material_id"] for r in loaded["rows"]] == ["good"]
        assert list(loaded["skipped"]) == ["bad"] and "_cell_length_a" in loaded["skipped"]["bad"]


def _hfmat_folder(tmp_path: Path, kind: str) -> Path:
    """A folder of CIFs that hfmat wrote: standard P1 files from ``hfmat generate`` (the shipped LM)
    or ``hfmat diffuse`` (a few steps of the shipped perov-5 model), or canonical files from
    ``hfmat cif canonicalize``."""
    import contextlib
    import io

    from hfmat.cli import main

    folder = tmp_path / kind
    if kind == "generate":  # the shipped LM
        argv = ["generate", "--composition", "SrTiO3", "--composition", "KMnF3", "-n", "1"]
        assert main([*argv, "--out", str(folder)]) == 0
        return folder
    if kind == "diffuse":
        argv = ["diffuse", "-c", "SrTiO3", "-c", "KMnF3", "-n", "1", "--steps", "3", "--corrector-steps", "0"]
        assert main([*argv, "--out", str(folder)]) == 0
        return folder
    folder.mkdir()
    sources = {
        "SrTiO3": SRTIO3,
        "NaCl": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
    }
    for name, structure in sources.items():
        standard = tmp_path / f"{name}.cif"
        standard.write_text(_standard(structure))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["cif", "canonicalize", str(standard)]) == 0
        (folder / f"{name}.cif").write_text(printed.getvalue())
    return folder


@pytest.mark.parametrize("kind", ["generate", "diffuse", "canonicalize"])
def test_loader_and_featurizers_read_hfmat_files_whole(tmp_path, kind):
    import warnings

    from hfmat.data import DataWarning, load_crystal_dataset
    from hfmat.data.featurize import add_canonical_cif, featurize_diffusion

    folder = _hfmat_folder(tmp_path, kind)
    files = sorted(folder.glob("*.cif"))
    expected = {f.stem: cif_to_structure(f.read_text()) for f in files}
    if kind == "canonicalize":  # the canonical text lists the asymmetric unit only
        assert "_symmetry_space_group_name_H-M   'P 1'" not in files[0].read_text()
        assert {k: len(s) for k, s in expected.items()} == {"NaCl": 8, "SrTiO3": 5}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no row may be skipped
        ds = load_crystal_dataset(folder)["train"]
        canonical = add_canonical_cif(ds)
        graphs = featurize_diffusion(ds)
    assert len(ds) == len(files) == len(canonical) == len(graphs)
    for row, text, graph in zip(ds, canonical["canonical_cif"], graphs):
        whole = expected[row["material_id"]]
        assert row["formula"] == whole.composition.reduced_formula
        assert row["num_atoms"] == len(whole)
        # training text names the cell's whole formula (data_Sr1Ti1O3, never data_Sr1Ti1O1)
        assert text.startswith(f"data_{whole.composition.formula.replace(' ', '')}\n")
        assert graph["num_atoms"] == len(whole)


GLOBAL_BLOCK = "data_global\n_publ_section_title   'a paper'\n_audit_creation_method   'by hand'\n\n"


@pytest.mark.parametrize("writer", ["standard", "canonical"])
def test_structure_in_a_later_block_is_read_and_named(writer):
    from hfmat.cif import check_validity, structure_to_cif

    body = _with_ops(_standard()) if writer == "standard" else structure_to_cif(SRTIO3)
    text = GLOBAL_BLOCK + body
    structure = cif_to_structure(text)
    assert structure.composition.formula.replace(" ", "") == "Sr1Ti1O3" and len(structure) == 5
    name = body.split("data_", 1)[1].split()[0]
    assert structure.properties["cif_block"] == f"data_{name} (block 2 of 2)"
    parse = check_validity(text)["parse"]
    assert parse.passed and f"data_{name} (block 2 of 2)" in parse.reason


def test_loader_reads_each_structure_block_as_a_row(tmp_path):
    from hfmat.data import load_crystal_dataset

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    folder = tmp_path / "blocks"
    folder.mkdir()
    (folder / "pair.cif").write_text(GLOBAL_BLOCK + _standard() + "\n" + _standard(nacl))
    ds = load_crystal_dataset(folder)["train"]
    assert sorted(zip(ds["material_id"], ds["formula"], ds["num_atoms"])) == [
        ("pair#NaCl", "NaCl", 8),
        ("pair#SrTiO3", "SrTiO3", 5),
    ]


def _check(text: str):
    from hfmat.cif import check_validity

    return check_validity(text)


def test_check_validity_survives_a_huge_formula_count():
    text = _bad("_chemical_formula_sum", "'Sr1e400 Ti1 O3'")  # raised OverflowError
    result = _check(text)["formula_consistency"]
    assert not result.passed and "count outside" in result.reason


def test_site_multiplicity_compares_elements_of_ionic_species():
    from pymatgen.io.cif import CifWriter

    kmnf3 = Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(4.19), ["K", "Mn", "F"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )
    kmnf3.add_oxidation_state_by_element({"K": 1, "Mn": 2, "F": -1})
    report = _check(str(CifWriter(kmnf3, symprec=0.1)))  # K+ / Mn2+ / F- sites
    assert report["parse"].passed and report["site_multiplicity"].passed, (
        report
    )  # was "K1 Mn1 F3 != K1 Mn1 F3"


def test_formula_consistency_reduced_data_name_and_cell_sum():
    from pymatgen.io.cif import CifWriter

    text = str(CifWriter(SRTIO3 * (2, 1, 1)))  # pymatgen writes data_SrTiO3 with 'Sr2 Ti2 O6'
    assert "data_SrTiO3" in text and "'Sr2 Ti2 O6'" in text
    assert _check(text)["formula_consistency"].passed
    from hfmat.cif.validity import formula_consistency

    assert formula_consistency("data_P2O5", "'P4 O10'", "P2O5", 2, exact=False).passed


def test_check_reads_a_space_group_in_another_setting():
    import re

    from pymatgen.io.cif import CifWriter

    zro2 = Structure.from_spacegroup(
        "P2_1/c",
        Lattice.monoclinic(5.15, 5.21, 5.31, 99.2),
        ["Zr", "O", "O"],
        [[0.276, 0.040, 0.208], [0.070, 0.332, 0.345], [0.450, 0.757, 0.479]],
    )
    text = str(CifWriter(zro2, symprec=0.1))
    text = re.sub(r"_symmetry_space_group_name_H-M.*", "_symmetry_space_group_name_H-M   'P 1 21/c 1'", text)
    text = re.sub(r"_symmetry_Int_Tables_number.*\n", "", text)
    assert len(cif_to_structure(text)) == 12
    report = _check(text)
    assert report["parse"].passed, report  # was: unknown symbol 'P 1 21/c 1'
    assert report["space_group"].passed and "14" in report["space_group"].reason, report


FIXTURES = Path(__file__).parent / "fixtures"


def _broken(tmp_path: Path, fixture: str, edit) -> Path:
    import shutil

    folder = Path(shutil.copytree(FIXTURES / fixture, tmp_path / fixture))
    edit(folder)
    return folder


def _json_edit(relative: str, **changes):
    def edit(folder: Path) -> None:
        config = json.loads((folder / relative).read_text())
        (folder / relative).write_text(json.dumps({**config, **changes}))

    return edit


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from hfmat.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("fixture", "edit", "named"),
    [
        (
            "lm-tiny",
            lambda f: (f / "config.json").write_text("garbage"),
            "lm-tiny/config.json is not a readable JSON",
        ),
        ("lm-tiny", _json_edit("config.json", n_layer="junk"), "n_layer"),
        (
            "pipeline-tiny",
            lambda f: __import__("shutil").rmtree(f / "lattice_scheduler"),
            "lattice_scheduler is missing",
        ),
        (
            "pipeline-tiny",
            lambda f: (f / "coord_scheduler" / "scheduler_config.json").write_text("{"),
            "coord_scheduler/scheduler_config.json is not a readable JSON",
        ),
        ("pipeline-tiny", _json_edit("denoiser/config.json", num_layers="x"), "denoiser/config.json"),
    ],
)
def test_broken_model_folders_give_one_line_naming_the_file(tmp_path, capsys, fixture, edit, named):
    folder = _broken(tmp_path, fixture, edit)
    command = "generate" if fixture.startswith("lm") else "diffuse"
    argv = [
        command,
        "--model",
        str(folder),
        "--composition",
        "SrTiO3",
        "-n",
        "1",
        "--out",
        str(tmp_path / "o"),
    ]
    code, err = _cli(capsys, *argv)
    assert code == 2 and named in err, err
    said = [line for line in err.splitlines() if line.strip() and "Loading pipeline components" not in line]
    assert "Traceback" not in err and len(said) == 1 and said[0].startswith(f"hfmat {command}: error: "), err


def test_bad_device_and_out_flags_are_named(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    code, err = _cli(
        capsys, "diffuse", "--composition", "SrTiO3", "--device", "gpu7", "--out", str(tmp_path / "d")
    )
    assert code == 2 and "--device gpu7" in err
    code, err = _cli(capsys, "diffuse", "--composition", "SrTiO3", "--out", str(afile))
    assert code == 2 and f"--out {afile} is a file" in err
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "srtio3__0.cif").write_text(_standard())
    code, err = _cli(
        capsys,
        "evaluate",
        "--task",
        "csp",
        "--predictions",
        str(preds),
        "--reference",
        str(preds),
        "--out",
        str(afile),
    )
    assert code == 2 and f"--out {afile} is a file" in err, err  # was a FileExistsError traceback


def test_canonical_text_is_stable_under_recanonicalization():
    from hfmat.cif import structure_to_cif

    lattice = Lattice.from_parameters(4.123456, 5.234567, 6.345678, 81.23456, 95.34567, 102.45678)
    structure = Structure(lattice, ["Si", "O", "O"], [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8], [0.35, 0.95, 0.55]])
    first = structure_to_cif(structure)
    second = structure_to_cif(cif_to_structure(first))

    def volume(text: str) -> str:
        return next(line for line in text.splitlines() if line.startswith("_cell_volume"))

    assert volume(first) == volume(second)  # was the unrounded cell's volume: it moved on a second pass
    cell = [
        float(line.split()[1])
        for line in first.splitlines()
        if line.startswith(("_cell_length", "_cell_angle"))
    ]
    assert volume(first) == f"_cell_volume {Lattice.from_parameters(*cell).volume:.4f}"


def test_negative_temperature_is_refused():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.lm import PromptError, generate_cifs

    model = AutoModelForCausalLM.from_pretrained(FIXTURES / "lm-tiny")
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "lm-tiny")
    with pytest.raises(PromptError, match="temperature"):  # was silently greedy
        generate_cifs(model, tokenizer, compositions=["SrTiO3"], num_samples=1, temperature=-1.0)


def test_mcif_files_are_named_not_silently_ignored(tmp_path):
    from hfmat.data import DataWarning, load_crystal_dataset
    from hfmat.evaluation.io import read_predictions

    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "srtio3__0.cif").write_text(_standard())
    (folder / "magnetic__0.mcif").write_text(_standard())
    with pytest.warns(DataWarning, match=r"1 \.mcif file\(s\) not read \(magnetic__0\.mcif\)"):
        assert load_crystal_dataset(folder)["train"]["material_id"] == ["srtio3__0"]
    records = read_predictions(folder)
    unread = [r for r in records if r.error]
    assert len(records) == 2 and len(unread) == 1 and unread[0].source.endswith("magnetic__0.mcif")


def test_resume_latest_skips_a_checkpoint_killed_mid_save(tmp_path, capsys, kill_mid_save):
    import importlib

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    common = importlib.import_module("common")

    def session():
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = common.make_accelerator(tmp_path, total_limit=5, log_with_tensorboard=False, cpu=True)
        torch.manual_seed(0)
        return accelerator, accelerator.prepare(torch.nn.Linear(2, 2))

    accelerator, model = session()
    common.start_or_resume(accelerator, None, tmp_path)
    first = common.save_checkpoint(accelerator)
    assert (first / common.CHECKPOINT_COMPLETE).is_file()
    killed = kill_mid_save(first.parent)  # checkpoint_1 as a run killed while writing it leaves it
    assert common.find_latest_checkpoint(tmp_path) == first  # was checkpoint_1: resume then failed
    assert "checkpoint_1 is incomplete" in capsys.readouterr().err

    accelerator, model = session()
    with pytest.raises(ValueError, match="checkpoint_1: incomplete checkpoint .* or .*checkpoint_0"):
        common.start_or_resume(accelerator, killed, tmp_path)
    accelerator, model = session()
    _, resumed = common.start_or_resume(accelerator, "latest", tmp_path)
    assert resumed == first and killed.with_name("checkpoint_1.incomplete").is_dir()
    again = common.save_checkpoint(accelerator)  # the slot is free again
    assert again.name == "checkpoint_1" and (again / common.CHECKPOINT_COMPLETE).is_file()


_TOY_TRAINING = """
import json, os, signal, sys
import torch
sys.path.insert(0, sys.argv[1])
import common

out, mode = sys.argv[2], sys.argv[3]
cfg = {**common.DEFAULTS, "output_dir": out, "per_device_batch_size": 2, "gradient_accumulation_steps": 1,
       "total_limit": 3, "log_every": 100, "eval_every": 100, "save_every": 100, "max_minutes": None,
       "warmup_steps": 0, "lr": 0.05}
acc = common.make_accelerator(out, total_limit=3, log_with_tensorboard=False, cpu=True)
torch.manual_seed(0)
x = torch.linspace(-1, 1, 12).unsqueeze(1)
points = torch.utils.data.TensorDataset(x, 3 * x)
loader, _ = common.dataloaders(points, points, None, cfg)
model = torch.nn.Linear(1, 1)
optimizer, scheduler = common.optimizer_and_scheduler_for(model, cfg, 8)
model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
progress, _ = common.start_or_resume(acc, "latest" if mode == "resume" else None, out)
loop = common.TrainingLoop(acc, cfg, model, optimizer, scheduler, loader, progress, 8, len(loader))

def after_step():
    if mode == "term" and progress.step == 2:  # the job is told to stop during step 3
        os.kill(os.getpid(), signal.SIGTERM)

reason = loop.run(loss=lambda b: {"loss": torch.nn.functional.mse_loss(model(b[0]), b[1])},
                  count=lambda b: torch.tensor(len(b[0])), evaluate=lambda: {}, log=lambda m: {},
                  after_step=after_step)
print(json.dumps({"reason": reason, "step": progress.step,
                  "weights": [p.detach().tolist() for p in model.parameters()]}))
"""


def test_sigterm_saves_a_checkpoint_and_the_resumed_run_is_identical(tmp_path):
    training = str(Path(__file__).resolve().parents[1] / "training")

    def run(out: Path, mode: str) -> dict:
        proc = _run(_TOY_TRAINING, training, str(out), mode)
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # was -15: killed, no checkpoint
        return json.loads(proc.stdout.strip().splitlines()[-1])

    full = run(tmp_path / "full", "full")
    stopped = run(tmp_path / "cut", "term")
    assert stopped["reason"] == "stopped" and stopped["step"] == 3
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint_0" / "hfmat_checkpoint_complete.json").is_file()
    resumed = run(tmp_path / "cut", "resume")
    assert full["step"] == resumed["step"] == 8
    assert resumed["weights"] == full["weights"]  # bit-identical to the uninterrupted run


_SCRIPTS = {  # script, tiny config, overrides, final weights; enough steps that SIGTERM lands mid-run
    "lm": (
        "train_cif_lm.py",
        "cif_lm_tiny.yaml",
        ["max_train_samples=16", "eval_holdout=4", "max_steps=60"],
        "model.safetensors",
    ),
    "diffusion": (
        "train_diffusion.py",
        "diffusion_tiny.yaml",
        [
            "eval_holdout=8",
            "max_train_samples=null",
            "per_device_batch_size=8",
            "hidden_dim=16",
            "num_layers=1",
        ],
        "denoiser/diffusion_pytorch_model.safetensors",
    ),
}


def _training_argv(family: str, data_csv: Path, out: Path, *extra: str, save_every: int = 1000) -> list[str]:
    """The command line of a tiny run of ``family``'s training script (see _SCRIPTS)."""
    repo = Path(__file__).resolve().parents[1]
    script, config, sets, _ = _SCRIPTS[family]
    overrides = [f"dataset={data_csv}", "data_dir=null", "train_split=train"]
    overrides += [f"save_every={save_every}", "eval_every=1000", "log_every=1000", *sets]
    command = [
        sys.executable,
        str(repo / "training" / script),
        "--config",
        str(repo / "training" / "configs" / config),
    ]
    return [*command, "--output-dir", str(out), *extra, "--set", *overrides]


def _finish(command: list[str]) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=repo, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _same_final_weights(family: str, a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    weights = _SCRIPTS[family][3]
    x, y = load_file(a / "final" / weights), load_file(b / "final" / weights)
    return x.keys() == y.keys() and all(torch_equal(x[k], y[k]) for k in x)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(_SCRIPTS))
def test_sigterm_to_a_training_script_then_resume_equals_an_uninterrupted_run(
    family, perov_val_csv, tmp_path
):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _finish(_training_argv(family, perov_val_csv, tmp_path / "full"))
    cut = tmp_path / "cut"
    printed = tmp_path / "cut.out"
    with printed.open("wb") as stdout:
        proc = subprocess.Popen(
            _training_argv(family, perov_val_csv, cut),
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=repo,
            bufsize=0,
        )
    seen = b""
    while b"train:" not in seen:  # the loop's progress bar: its SIGTERM handler is in place
        chunk = proc.stderr.read(1)
        assert chunk, seen.decode(errors="replace")[-2000:]
        seen += chunk
    proc.send_signal(signal.SIGTERM)
    err = (seen + proc.communicate(timeout=600)[1]).decode(errors="replace")
    assert proc.returncode == 0, err[-2000:]  # was -15: killed with nothing saved
    assert "SIGTERM: saving a checkpoint at step" in printed.read_text() and not (cut / "final").exists()
    assert (cut / "checkpoints" / "checkpoint_0" / "hfmat_checkpoint_complete.json").is_file()
    _finish(_training_argv(family, perov_val_csv, cut, "--resume", "latest"))
    assert _same_final_weights(family, tmp_path / "full", cut)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(_SCRIPTS))
def test_sigkill_mid_run_then_resume_latest_equals_an_uninterrupted_run(family, perov_val_csv, tmp_path):
    """A real SIGKILL (no handler runs) after the second checkpoint: possibly in the middle of a later
    save; ``--resume latest`` takes the newest complete checkpoint and ends bit-identical."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _finish(_training_argv(family, perov_val_csv, tmp_path / "full", save_every=4))
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _training_argv(family, perov_val_csv, cut, save_every=4),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=repo,
    )
    saves = 0
    for line in proc.stdout:  # the run reports each completed checkpoint
        saves += line.startswith(b"checkpoint saved:")
        if saves == 2:
            break
    assert saves == 2, "the run ended before its second checkpoint"
    proc.kill()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (cut / "final").exists()
    _finish(_training_argv(family, perov_val_csv, cut, "--resume", "latest", save_every=4))
    assert _same_final_weights(family, tmp_path / "full", cut)


def torch_equal(x, y) -> bool:
    return bool((x == y).all())
