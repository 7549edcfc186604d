"""hfmat.physics: batched relaxation with CHGNet, the reference hull, ``hfmat relax``, the missing-extra
error, MP2020 corrections and the fast cell filter. CHGNet loads once for the module; the tests
that need it skip, saying why, when the ``physics`` extra is not installed."""

from __future__ import annotations

import csv
import importlib.util
import sys

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from hfmat.extras import MissingExtraError, require

HAS_EXTRA = importlib.util.find_spec("chgnet") is not None
needs_extra = pytest.mark.skipif(
    not HAS_EXTRA, reason='the physics extra is not installed: pip install "hfmat[physics]"'
)


def srtio3(a: float = 3.905) -> Structure:
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def distorted_srtio3() -> Structure:
    """Strained and sheared, atoms kept on their centrosymmetric sites (an off-centre Ti would let
    CHGNet's shallow polar minimum compete with the cubic one)."""
    s = srtio3()
    deformation = np.array([[1.06, 0.03, 0.0], [0.0, 0.97, 0.02], [0.0, 0.0, 1.04]])
    return Structure(Lattice(s.lattice.matrix @ deformation), s.species, s.frac_coords)


@pytest.fixture(scope="module")
def chgnet():
    from hfmat.physics import load_potential

    return load_potential("chgnet")


@pytest.fixture(scope="module")
def batch(chgnet):
    """One batch: the ideal cell, a distorted one, an element CHGNet has no data for, not a structure,
    two atoms 0.08 Å apart."""
    from hfmat.physics import relax

    bad = srtio3()
    bad.replace(0, "Es")
    overlapping = srtio3()
    overlapping.append("O", [0.5, 0.5, 0.02])
    inputs = [srtio3(), distorted_srtio3(), bad, "not a structure", overlapping]
    return inputs, relax(inputs, chgnet, fmax=0.05, steps=300, batch_size=4, progress=False)


def test_missing_extra_names_the_extra(monkeypatch):
    from hfmat.physics.potentials import CHGNetPotential

    monkeypatch.setitem(sys.modules, "chgnet", None)  # import chgnet now raises ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "hfmat\[physics\]"'):
        require("chgnet")
    with pytest.raises(MissingExtraError, match="chgnet"):
        CHGNetPotential()


def test_fast_cell_filter_follows_ases_trajectory():
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from hfmat.physics.cellfilter import frechet_cell_filter

    final = []
    for make in (FrechetCellFilter, frechet_cell_filter):
        atoms = bulk("Cu", "fcc", a=3.4, cubic=True)
        atoms.rattle(0.1, seed=1)
        atoms.set_cell(atoms.cell @ np.array([[1, 0.05, 0], [0, 1, 0.02], [0.03, 0, 1]]), scale_atoms=True)
        atoms.calc = EMT()
        opt = FIRE(make(atoms), logfile=None)
        opt.run(fmax=0.01, steps=200)
        final.append((opt.nsteps, atoms.positions.copy(), atoms.cell.array.copy()))
    assert final[0][0] == final[1][0] < 200
    np.testing.assert_allclose(final[0][1], final[1][1], atol=1e-9)
    np.testing.assert_allclose(final[0][2], final[1][2], atol=1e-9)


def test_mp2020_correction_of_an_oxide():
    from hfmat.physics.corrections import mp2020_correction

    # SrTiO3: three oxide anions (-0.687 eV each in MP2020), no Hubbard U for Sr or Ti
    assert mp2020_correction(srtio3(), -40.0) == pytest.approx(3 * -0.687, abs=0.01)
    assert mp2020_correction(Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]), -4.0) == 0.0


@needs_extra
def test_known_structure_relaxes_down_and_stays_put(batch):
    _, results = batch
    ideal = results[0]
    assert ideal.ok and ideal.converged and ideal.max_force < 0.05
    assert ideal.energy_final <= ideal.energy_initial + 1e-6
    assert ideal.rmsd is not None and ideal.rmsd < 0.05
    assert -9.0 < ideal.energy_final < -7.0  # CHGNet's SrTiO3 is about -8 eV/atom


@needs_extra
def test_distorted_srtio3_relaxes_back(batch):
    from hfmat.physics.relaxation import rms_distance

    inputs, results = batch
    ideal, distorted = results[0], results[1]
    assert distorted.ok and distorted.converged
    assert distorted.energy_final < distorted.energy_initial - 0.01
    assert distorted.energy_final == pytest.approx(ideal.energy_final, abs=5e-3)
    start = np.abs(np.subtract(inputs[1].lattice.parameters, ideal.structure.lattice.parameters))
    end = np.abs(np.subtract(distorted.structure.lattice.parameters, ideal.structure.lattice.parameters))
    assert start.max() > 0.2 and end.max() < start.max() / 10  # lengths in Å, angles in degrees
    assert rms_distance(ideal.structure, distorted.structure) < 0.01


@needs_extra
def test_a_bad_structure_fails_alone(batch):
    _, results = batch
    assert results[0].ok and results[1].ok
    assert not results[2].ok and results[2].structure is None and "Es" in results[2].error
    assert "Structure" in results[3].error
    assert "Å apart" in results[4].error and results[4].row()["formula"] == "SrTiO4"
    assert results[2].row()["formula"] == "EsTiO3" and results[2].row()["error"]


@needs_extra
def test_batching_does_not_change_a_trajectory(batch, chgnet):
    from hfmat.physics import relax

    inputs, results = batch
    alone = relax([inputs[1]], chgnet, fmax=0.05, steps=300, batch_size=1, progress=False)[0]
    assert alone.steps == results[1].steps
    assert alone.energy_final == pytest.approx(results[1].energy_final, abs=1e-4)


@needs_extra
def test_single_points_match_the_relaxation(batch, chgnet):
    from hfmat.physics import energies

    inputs, results = batch
    points = energies([*inputs[:4], results[0].structure], chgnet, progress=False)
    assert points[0].energy == pytest.approx(results[0].energy_initial, abs=1e-5)
    assert points[1].energy == pytest.approx(results[1].energy_initial, abs=1e-5)
    # eV/Å³; converged means the cell's force, stress * volume / atoms, is below fmax = 0.05 eV/Å
    bound = 0.05 * 5 / results[0].structure.volume
    assert np.abs(points[1].stress).max() > 0.01 > bound > np.abs(points[4].stress).max()
    assert points[4].energy == pytest.approx(results[0].energy_final, abs=1e-5)
    assert points[2].energy is None and "Es" in points[2].error and points[3].error


@pytest.fixture(scope="module")
def tiny_hull(chgnet, tmp_path_factory):
    """SrTiO3, rocksalt SrO and rutile TiO2 (DFT-like geometries, single points) + Sr, Ti, O."""
    from hfmat.physics.hull import reference_hull

    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.16), ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    rutile = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )
    refs = [srtio3(), rocksalt.get_primitive_structure(), rutile]
    cache = tmp_path_factory.mktemp("hull")
    settings = dict(
        relax_structures=False, steps=20, prototypes=("fcc", "dimer"), cache_dir=cache, progress=False
    )
    return refs, settings, reference_hull(refs, chgnet, **settings)


@needs_extra
def test_reference_hull_is_nonnegative_with_elements_at_zero(chgnet, tiny_hull):
    from pymatgen.analysis.phase_diagram import PDEntry

    from hfmat.physics.hull import e_above_hull, reference_hull

    refs, settings, hull = tiny_hull
    assert hull.elements == ("O", "Sr", "Ti") and "not the Materials Project" in hull.note
    pd = hull.phase_diagram(hull.elements)
    for entry in hull.entries:
        e = hull.e_above_hull(entry.composition, entry.energy_per_atom)
        assert e >= -1e-9
        if entry in pd.el_refs.values():
            assert e == pytest.approx(0.0, abs=1e-9)
    assert sorted(el.symbol for el in pd.el_refs) == ["O", "Sr", "Ti"]
    expected = hull.phase_diagram(["Sr", "O"]).get_e_above_hull(PDEntry("SrO", -10.0), allow_negative=True)
    assert hull.e_above_hull("SrO", -5.0) == pytest.approx(expected)  # eV/atom; PDEntry takes the total
    # cached: a second call reads the JSON and gives the same hull
    assert len(list(settings["cache_dir"].glob("hull-*.json"))) == 1
    again = reference_hull(refs, chgnet, **settings)
    assert [e.energy for e in again.entries] == [e.energy for e in hull.entries]
    # a structure below SrTiO3's own energy is below the hull; an unknown element gives None
    e_sto = next(e for e in hull.entries if e.composition.reduced_formula == "SrTiO3").energy_per_atom
    below, unknown = e_above_hull(
        [srtio3(), Structure(Lattice.cubic(3), ["Cu"], [[0, 0, 0]])], [e_sto - 0.5, -3.0], hull
    )
    assert below < 0 and unknown is None


@needs_extra
def test_stability_counts_stable_unique_novel(chgnet, tiny_hull):
    from hfmat.physics.stability import stability

    _, _, hull = tiny_hull
    strained_sro = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.4), ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    generated = [srtio3(3.95), srtio3(3.90), strained_sro.get_primitive_structure()]
    summary, rows = stability(generated, hull, train=[srtio3()], potential=chgnet, fmax=0.05, progress=False)
    assert [r["unique"] for r in rows] == [True, False, True]  # the two SrTiO3 relax to one structure
    assert [r["novel"] for r in rows] == [False, False, True]  # SrTiO3 is in the training set
    # relaxed below the reference geometries' single-point energies: on or below the hull
    assert all(r["stable"] and r["e_above_hull"] <= 0 for r in rows)
    assert summary["sun_rate"] == pytest.approx(1 / 3) and summary["stable_rate"] == 1.0
    assert "not the Materials Project" in summary["note"]


@needs_extra
def test_cli_relax_writes_cifs_and_a_csv(tmp_path, chgnet, capsys):
    from hfmat.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    srtio3(3.95).to(filename=str(folder / "sto.cif"))
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    # what hfmat diffuse --format extxyz writes is read too; other files in the folder are not inputs
    from hfmat.cif.export import write_structure

    write_structure(srtio3(3.95), folder / "sto_xyz", "extxyz")
    (folder / "notes.txt").write_text("not a structure")
    assert (
        main(["relax", str(folder), "--out", str(tmp_path / "out"), "--fmax", "0.05", "--no-progress"]) == 0
    )
    rows = {r["file"].split("/")[-1]: r for r in csv.DictReader((tmp_path / "out" / "relax.csv").open())}
    assert rows["sto.cif"]["converged"] == "True" and rows["sto.cif"]["output"] == "sto.cif"
    assert float(rows["sto.cif"]["energy_per_atom_final"]) <= float(
        rows["sto.cif"]["energy_per_atom_initial"]
    )
    assert rows["broken.cif"]["error"].startswith("cannot read broken.cif")
    relaxed = Structure.from_file(tmp_path / "out" / "sto.cif")
    assert len(relaxed) == 5 and relaxed.composition.reduced_formula == "SrTiO3"
    assert rows["sto_xyz.extxyz"]["converged"] == "True" and "notes.txt" not in rows
    assert "relaxed 2/3" in capsys.readouterr().out


@needs_extra
def test_cli_relax_with_a_hull_writes_stability(tmp_path, tiny_hull, monkeypatch, capsys):
    import json

    import hfmat.physics.hull
    from hfmat.cli import main

    refs, _, hull = tiny_hull
    monkeypatch.setattr(hfmat.physics.hull, "reference_hull", lambda *a, **k: hull)  # built and tested above
    (tmp_path / "refs").mkdir()
    (tmp_path / "gen").mkdir()
    for i, s in enumerate(refs):
        s.to(filename=str(tmp_path / "refs" / f"ref{i}.cif"))
    srtio3(3.95).to(filename=str(tmp_path / "gen" / "sto.cif"))
    args = ["relax", str(tmp_path / "gen"), "--out", str(tmp_path / "out"), "--no-progress"]
    hulls = ["--hull", str(tmp_path / "refs"), "--hull", str(tmp_path / "refs")]  # joined: the same twice
    assert main([*args, *hulls, "--train", str(tmp_path / "refs")]) == 0
    row = next(csv.DictReader((tmp_path / "out" / "relax.csv").open()))
    assert float(row["e_above_hull"]) <= 0 and row["stable"] == "True" and row["novel"] == "False"
    summary = json.loads((tmp_path / "out" / "stability.json").read_text())
    assert (
        summary["sun_rate"] == 0.0
        and summary["stable_rate"] == 1.0
        and "not the Materials" in summary["note"]
    )
    assert (tmp_path / "out" / "energies.png").stat().st_size > 1000
    assert "S.U.N. 0.0" in capsys.readouterr().out


@needs_extra
def test_csp_relaxation_brings_a_displaced_sample_onto_its_target(chgnet):
    from hfmat.physics.csp import csp_relaxation

    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    displaced = mgo.copy()
    displaced.translate_sites([1], [0.04, 0.02, 0])
    displaced.apply_strain([0.04, -0.02, 0.03])
    bad = mgo.copy()
    bad.replace(0, "Es")
    predictions = {"mgo": [displaced], "other": [bad]}
    out = csp_relaxation(predictions, {"mgo": mgo, "other": mgo}, chgnet, fmax=0.05, progress=False)
    assert out["n_candidates"] == 2 and out["relaxed"] == 1
    assert out["before"]["match_rate"] == out["after"]["match_rate"] == 0.5  # the Es sample never counts
    assert out["after"]["rmse"] < out["before"]["rmse"] / 5  # 0.011 -> 0.0005
    assert out["after_vs_relaxed_targets"]["match_rate"] == 0.5
    assert abs(out["energy_gap"]["mgo"]) < 0.005 and "other" not in out["energy_gap"]


def _cheap_relax(monkeypatch, steps: int):
    """Real relaxations, cut at ``steps`` (the CLI's --relax always asks for 500)."""
    import hfmat.physics.relaxation as relaxation

    real = relaxation.relax
    monkeypatch.setattr(relaxation, "relax", lambda s, p, **k: real(s, p, **{**k, "steps": steps}))


@needs_extra
def test_relax_written_puts_relaxed_files_beside_the_run(tmp_path, chgnet, capsys):
    import json

    from hfmat.cli.outputs import RunWriter, check_out
    from hfmat.cli.relax_option import relax_written

    overlapping = srtio3()
    overlapping.append("O", [0.5, 0.5, 0.02])
    out = tmp_path / "run"
    writer = RunWriter(out, "diffuse")
    writer.add("0000_SrTiO3", srtio3(4.1), {"valid": True})
    writer.add("0001_bad", overlapping, {"valid": False})
    info = relax_written(writer, chgnet)
    writer.finish()
    assert info["n_relaxed"] == 1 and info["files"] == ["0000_SrTiO3.relaxed.cif"]
    relaxed = Structure.from_file(out / "0000_SrTiO3.relaxed.cif")
    assert relaxed.lattice.a < 4.0 and Structure.from_file(out / "0000_SrTiO3.cif").lattice.a == 4.1
    rows = list(csv.DictReader((out / "relax.csv").open()))
    assert [r["file"] for r in rows] == ["0000_SrTiO3.cif", "0001_bad.cif"]
    assert float(rows[0]["energy_per_atom_final"]) < float(rows[0]["energy_per_atom_initial"])
    assert "0.5 Å" in rows[1]["error"] and rows[1]["output"] == ""
    assert json.loads((out / "summary.json").read_text())["relax"]["table"] == "relax.csv"
    # --overwrite of the same command removes the relaxed files too (they are the run's)
    assert {"relax.csv", "0000_SrTiO3.relaxed.cif"} <= set(check_out(out, "diffuse", overwrite=True))
    assert "relaxed 1/2" in capsys.readouterr().out


@needs_extra
def test_diffuse_relax_flag(tmp_path, monkeypatch, capsys):
    import json

    import hfmat.physics.potentials
    from hfmat.cli import main

    _cheap_relax(monkeypatch, 10)
    argv = ["diffuse", "-c", "SrTiO3", "-n", "2", "--steps", "30", "--corrector-steps", "0", "--threads", "1"]
    assert main([*argv, "--relax", "chgnet", "--out", str(tmp_path / "d")]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    relaxed = summary["relax"]
    assert relaxed["n_structures"] == 2 and "CHGNet" in relaxed["potential"]
    assert relaxed["n_relaxed"] == len(relaxed["files"]) >= 1  # 30 steps: not every sample is sound
    rows = list(csv.DictReader((tmp_path / "d" / "relax.csv").open()))
    assert [r["file"] for r in rows] == [f["file"] for f in summary["files"]]
    assert all(int(r["steps"]) <= 10 for r in rows) and sum(not r["error"] for r in rows) == len(
        relaxed["files"]
    )
    for name in relaxed["files"]:
        assert name.endswith(".relaxed.cif") and len(Structure.from_file(tmp_path / "d" / name)) == 5
    capsys.readouterr()
    assert main([*argv, "--relax", "chgnet"]) == 2
    assert "--relax needs --out" in capsys.readouterr().err

    def missing(name):
        raise MissingExtraError('the CHGNet interatomic potential needs pip install "hfmat[physics]"')

    monkeypatch.setattr(hfmat.physics.potentials, "load_potential", missing)
    assert main([*argv, "--relax", "chgnet", "--out", str(tmp_path / "e")]) == 2
    assert '--relax chgnet: the CHGNet interatomic potential needs pip install "hfmat[physics]"' in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "e").exists()


@needs_extra
def test_evaluate_relax_csp_and_generation(tmp_path, tiny_hull, monkeypatch, capsys):
    import json

    import hfmat.physics.hull
    from hfmat.cli import main

    refs, _, hull = tiny_hull
    monkeypatch.setattr(hfmat.physics.hull, "reference_hull", lambda *a, **k: hull)  # built and tested above
    for folder in ("refs", "preds"):
        (tmp_path / folder).mkdir()
    for i, s in enumerate(refs):
        s.to(filename=str(tmp_path / "refs" / f"ref{i}.cif"))
    srtio3(4.1).to(filename=str(tmp_path / "preds" / "ref0.cif"))  # a candidate for target ref0
    common = ["--predictions", str(tmp_path / "preds"), "--reference", str(tmp_path / "refs")]
    common += ["--workers", "1", "--no-progress", "--relax", "chgnet"]
    assert main(["evaluate", "--task", "csp", *common, "--out", str(tmp_path / "csp")]) == 0
    relaxation = json.loads((tmp_path / "csp" / "relaxation.json").read_text())
    assert relaxation["n_targets"] == 1 and relaxation["relaxed"] == 1
    assert relaxation["before"]["match_rate"] == relaxation["after"]["match_rate"] == 1.0
    assert relaxation["after"]["rmse"] < 0.01 and "CHGNet" in relaxation["potential"]
    assert abs(relaxation["energy_gap_median"]) < 0.005  # both relax to the same cubic cell
    gen = ["evaluate", "--task", "generation", *common, "--train", str(tmp_path / "refs")]
    assert main([*gen, "--out", str(tmp_path / "gen")]) == 0
    stability = json.loads((tmp_path / "gen" / "stability.json").read_text())
    assert stability["stable_rate"] == 1.0 and stability["sun_rate"] == 0.0  # SrTiO3 is in the train set
    row = next(csv.DictReader((tmp_path / "gen" / "relax.csv").open()))
    assert row["file"].endswith("ref0.cif") and float(row["e_above_hull"]) <= 0
    assert "S.U.N. 0.0" in capsys.readouterr().out
