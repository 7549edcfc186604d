"""Untrusted CIF text cannot stall or kill the caller (issue 18): pymatgen's reader and the
validity checks run in a worker process under a time limit (hfmat.cif.timelimit), a worker that
dies is a CifError, the CLI names each bad file on one line, and the loader skips a bad or slow
file by name and loads the rest."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from pymatgen.core import Structure
from pymatgen.symmetry.groups import SpaceGroup

from hfmat.cif import CifError, check_validity, cif_to_structure, timelimit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _slow_cif(rows: int = 250) -> str:
    """Fm-3m with its 192 operations written out and ``rows`` general positions: pymatgen's reader
    spends minutes merging the ~48,000 images (and the reader would then refuse the cell as too
    big). A real pathological file, not a mock."""
    ops = "".join(f"'{op.as_xyz_str()}'\n" for op in SpaceGroup("Fm-3m").symmetry_ops)
    rng = random.Random(0)
    sites = "".join(f"C{i} C {rng.random():.4f} {rng.random():.4f} {rng.random():.4f}\n" for i in range(rows))
    return (
        "data_slow\n_cell_length_a 20\n_cell_length_b 20\n_cell_length_c 20\n_cell_angle_alpha 90\n"
        "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'F m -3 m'\n"
        "loop_\n_symmetry_equiv_pos_as_xyz\n" + ops + "loop_\n_atom_site_label\n_atom_site_type_symbol\n"
        "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n" + sites
    )


def _spinel_with_ops() -> str:
    """A well-formed CIF that goes to pymatgen (the worker): symmetry operations written out."""
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(Structure.from_file(EXAMPLES / "MgAl2O4_spinel.cif"), symprec=0.1))


#: sites pymatgen reads from it (the conventional cell)
SPINEL_SITES = len(Structure.from_str(_spinel_with_ops(), fmt="cif"))


def test_a_slow_file_is_stopped_at_the_time_limit_and_the_next_call_works():
    good = _spinel_with_ops()
    assert len(cif_to_structure(good)) == SPINEL_SITES  # the worker is up
    start = time.perf_counter()
    with pytest.raises(CifError, match=r"reading the CIF took longer than 1 s"):
        cif_to_structure(_slow_cif(), time_limit=1)
    report = check_validity(_slow_cif(), time_limit=1)
    assert time.perf_counter() - start < 30  # each stopped at 1 s (+ a worker restart)
    assert not report.valid and "checking the CIF took longer than 1 s" in report["parse"].reason
    assert len(cif_to_structure(good)) == SPINEL_SITES  # a fresh worker
    assert check_validity(good).valid


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(timelimit.ENV, "1.5")
    assert timelimit.time_limit() == 1.5 and timelimit.time_limit(4) == 4
    with pytest.raises(CifError, match="took longer than 1.5 s"):
        cif_to_structure(_slow_cif())
    monkeypatch.setenv(timelimit.ENV, "0")
    assert timelimit.time_limit() is None  # in this process, no limit
    monkeypatch.setenv(timelimit.ENV, "soon")
    with pytest.raises(ValueError, match="HFMAT_CIF_TIME_LIMIT"):
        timelimit.time_limit()
    monkeypatch.delenv(timelimit.ENV)
    assert timelimit.time_limit() == timelimit.DEFAULT_TIME_LIMIT
    with pytest.raises(ValueError, match="seconds"):
        timelimit.time_limit(-1)


def test_a_worker_that_dies_is_a_cif_error_and_the_caller_lives_on(monkeypatch):
    """SIGSEGV sent to the worker while it reads (what a crash in spglib looks like)."""
    good = _spinel_with_ops()
    cif_to_structure(good)
    sent = threading.Event()
    send = timelimit._send

    def send_then_signal(stream, obj):
        send(stream, obj)
        sent.set()

    monkeypatch.setattr(timelimit, "_send", send_then_signal)
    worker = timelimit._WORKER.proc
    result: dict = {}
    reader = threading.Thread(
        target=lambda: result.update(report=check_validity(_slow_cif(), time_limit=120))
    )
    reader.start()
    assert sent.wait(60)
    os.kill(worker.pid, signal.SIGSEGV)
    reader.join(60)
    assert not reader.is_alive()
    reason = result["report"]["parse"].reason
    assert "checking the CIF: the worker died (SIGSEGV)" in reason
    assert len(cif_to_structure(good)) == SPINEL_SITES


def test_time_limit_off_reads_in_this_process():
    good = _spinel_with_ops()
    assert len(cif_to_structure(good, time_limit=0)) == SPINEL_SITES
    assert check_validity(good, time_limit=0).valid


# --------------------------------------------------------------------------------------------------
# CLI and loader


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from hfmat.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "junk.cif": bytes(range(256)) * 4,
        "nan.cif": (EXAMPLES / "TiO2_rutile.cif").read_text().replace("4.59400000", "nan", 1).encode(),
        "flat.cif": (EXAMPLES / "TiO2_rutile.cif")
        .read_text()
        .replace("_cell_angle_alpha   90.00000000", "_cell_angle_alpha   120")
        .replace("_cell_angle_beta   90.00000000", "_cell_angle_beta   120")
        .replace("_cell_angle_gamma   90.00000000", "_cell_angle_gamma   120")
        .encode(),
        "slow.cif": _slow_cif().encode(),
        "latin1.cif": (EXAMPLES / "TiO2_rutile.cif")
        .read_text()
        .replace("4.59400000", "4.59\xb000", 1)
        .encode("latin-1"),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


def test_cli_names_each_unreadable_file_on_one_line(tmp_path, capsys):
    bad = _bad_files(tmp_path)
    good = tmp_path / "good.cif"
    good.write_text("\ufeff# Kristallstruktur von Müller\n" + (EXAMPLES / "TiO2_rutile.cif").read_text())
    code, out, err = _cli(
        capsys, "cif", "canonicalize", str(good), *map(str, bad.values()), "--time-limit", "4"
    )
    assert code == 2
    assert out.startswith(f"# {good}\ndata_Ti2O4\n") and out.count("data_") == 1
    lines = err.strip().splitlines()
    assert len(lines) == len(bad)
    for line, path in zip(lines, bad.values(), strict=True):
        assert line.startswith(f"hfmat cif canonicalize: {path}: error: ")
    assert "took longer than 4 s" in lines[list(bad).index("slow.cif")]
    code, out, err = _cli(capsys, "cif", "check", str(good), str(bad["slow.cif"]), "--time-limit", "4")
    assert code == 1 and f"{good}: valid" in out and "took longer than 4 s" in out


def test_loader_skips_bad_and_slow_files_by_name_and_loads_the_rest(tmp_path, monkeypatch):
    import warnings

    from hfmat.data import load_crystal_dataset
    from hfmat.data.errors import DataWarning

    folder = tmp_path / "cifs"
    folder.mkdir()
    bad = _bad_files(folder)
    for name in ("TiO2_rutile", "NaCl_rocksalt", "MgAl2O4_spinel"):
        (folder / f"{name}.cif").write_text((EXAMPLES / f"{name}.cif").read_text())
    (folder / "folder.cif").mkdir()  # not a file: named, not read
    (folder / "gone.cif").symlink_to(folder / "missing")
    monkeypatch.setenv(timelimit.ENV, "4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset, stats = load_crystal_dataset(folder, return_stats=True, cache_dir=str(tmp_path / "cache"))
    assert sorted(dataset["train"]["material_id"]) == ["MgAl2O4_spinel", "NaCl_rocksalt", "TiO2_rutile"]
    skipped = stats["train"].skipped
    assert sorted(skipped) == sorted(Path(n).stem for n in bad)
    assert "took longer than 4 s" in skipped["slow"]
    assert "_cell_length_a" in skipped["nan"] and "non-ASCII" in skipped["latin1"]
    summary = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any(f"skipped {len(bad)} of {len(bad) + 3}" in m and "slow: " in m for m in summary)
    assert any("folder.cif, gone.cif not read: not a file" in m for m in summary)


def test_an_interrupted_call_stops_the_worker_so_its_answer_cannot_reach_the_next(monkeypatch):
    good = _spinel_with_ops()
    cif_to_structure(good)
    receive = timelimit._receive

    def interrupted(fd, deadline):
        monkeypatch.setattr(timelimit, "_receive", receive)
        raise KeyboardInterrupt

    monkeypatch.setattr(timelimit, "_receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        check_validity(good)
    assert timelimit._WORKER.proc is None
    assert len(cif_to_structure(good)) == SPINEL_SITES
