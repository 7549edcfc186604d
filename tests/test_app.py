"""The web app's functions without a server (hfmat.app): the 3D view, the results table, the files,
the equivalent CLI commands (which reproduce the app's samples), bad input answered with the
library's messages before any sampling, de novo generation with and without guidance, uploads,
and the physics columns with a stand-in potential."""

from __future__ import annotations

import os
import shlex
import sys
import zipfile

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from hfmat.app import commands, layout, sampling
from hfmat.app.models import DIFFUSION, LM, Models
from hfmat.app.results import CHECK_COLUMNS, COLUMNS, Result, check_rows, summary_row, validity_of, write_zip
from hfmat.app.viewer import EDGES, cell_edges, cell_figure, element_color
from hfmat.cif.validity import CHECKS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def models():
    return Models.from_names()


def srtio3() -> Structure:
    return Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def test_models_are_told_apart_by_their_folders(models):
    assert models.names(LM) == [
        "cif-gpt2-perov5",
        "cif-gpt2-carbon24",
        "cif-gpt2-general",
        "cif-gpt2-perov5-rl",
        "cif-gpt2-perov5-rft",
    ]
    assert models.names(DIFFUSION, de_novo=True) == [
        "crystal-diffusion-perov5-gen",
        "crystal-diffusion-perov5-gen-conditioned",
        "crystal-diffusion-carbon24-gen-conditioned",
        "crystal-diffusion-perov5-text",
        "crystal-diffusion-perov5-carbon24-text",
    ]
    assert set(models.names(DIFFUSION, de_novo=False)) == {
        "crystal-diffusion-perov5",
        "crystal-diffusion-carbon24",
        "crystal-diffusion-general",
    }
    conditioned = {name for name, e in models.entries.items() if e.properties}
    assert conditioned == {
        "crystal-diffusion-perov5-gen-conditioned",
        "crystal-diffusion-carbon24-gen-conditioned",
    }
    assert models.entry("crystal-diffusion-perov5-gen-conditioned").condition_names == ["heat_ref", "dir_gap"]
    assert models.entry("crystal-diffusion-carbon24-gen-conditioned").condition_names == ["energy_per_atom"]
    assert [name for name, e in models.entries.items() if e.takes_prompt] == [
        "crystal-diffusion-perov5-text",
        "crystal-diffusion-perov5-carbon24-text",
    ]
    assert models.entry("crystal-diffusion-perov5-text").condition_names == []
    with pytest.raises(FileNotFoundError, match="no folder"):
        Models.from_names(["no/such/folder/x"])


def test_cell_edges_are_the_twelve_edges_of_the_cell():
    lattice = Lattice.from_parameters(3.0, 4.0, 5.0, 80, 95, 110)
    points = cell_edges(lattice.matrix).reshape(len(EDGES), 3, 3)
    assert len(EDGES) == 12 and np.isnan(points[:, 2]).all()
    lengths = sorted(np.linalg.norm(p[1] - p[0]) for p in points)
    assert np.allclose(lengths, [3.0] * 4 + [4.0] * 4 + [5.0] * 4)


def test_cell_figure_has_one_trace_per_element_in_jmol_colours():
    fig = cell_figure(srtio3())
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"cell", "O", "Sr", "Ti"}
    assert len(traces["O"].x) == 3 and len(traces["Sr"].x) == 1
    assert traces["O"].marker.color == element_color("O") == "rgb(255,13,13)"
    assert traces["O"].marker.color != traces["Ti"].marker.color
    assert fig.layout.scene.aspectmode == "data"  # the cell is not stretched


def test_summary_row_and_checks_of_a_structure(examples_dir):
    structure = Structure.from_file(examples_dir / "TiO2_rutile.cif")
    result = Result("upload", 0, structure, validity_of(structure))
    row = dict(zip(COLUMNS, summary_row(result)))
    assert row["formula"] == "Ti2O4" and row["space group"] == "P4_2/mnm (136)"
    assert row["a (Å)"] == pytest.approx(structure.lattice.a, abs=1e-3)
    assert row["density (g/cm³)"] == pytest.approx(structure.density, abs=1e-3)
    assert row["valid"] == "yes" and row["failed checks"] == ""
    rows = check_rows(result.report)
    assert [r[0] for r in rows] == list(CHECKS) and len(rows[0]) == len(CHECK_COLUMNS)
    # a structure with two atoms on one point: the failed checks are named, nothing raises
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.01]])
    row = dict(zip(COLUMNS, summary_row(Result("x", 1, bad, validity_of(bad)))))
    assert row["valid"] == "no" and "structural" in row["failed checks"]


def test_zip_holds_every_structure_as_a_standard_cif(tmp_path):
    a, b = srtio3(), Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    results = [
        Result("m", 0, a, validity_of(a)),
        Result("m", 1, b, validity_of(b)),
        Result("lm", 0, None, validity_of(a), text="data_broken\n"),
    ]
    path = write_zip(results, tmp_path / "all.zip")
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == ["lm/0000_does_not_parse.txt", "m/0000_Sr1Ti1O3.cif", "m/0001_Na1Cl1.cif"]
        back = Structure.from_str(archive.read("m/0001_Na1Cl1.cif").decode(), fmt="cif")
    assert back.composition == b.composition and len(back) == 2
    assert write_zip([], tmp_path / "none.zip") is None and not (tmp_path / "none.zip").exists()


def test_commands_are_valid_hfmat_commands():
    from hfmat.cli import build_parser

    lm = commands.generate_command("cif-gpt2-perov5", "Sr Ti O3", "Pm-3m", 4, 7)
    args = build_parser().parse_args(shlex.split(lm)[1:])
    assert (args.command, args.model, args.composition, args.spacegroup) == (
        "generate",
        "cif-gpt2-perov5",
        ["Sr Ti O3"],
        "Pm-3m",
    )
    assert (args.num_samples, args.seed, args.batch_size) == (4, 7, commands.LM_BATCH_SIZE)
    gen = commands.diffuse_command(
        "my model",
        num_atoms=5,
        num_samples=3,
        seed=1,
        steps=50,
        conditions={"heat_ref": -0.5},
        guidance_scale=2.0,
    )
    args = build_parser().parse_args(shlex.split(gen)[1:])
    assert (args.model, args.num_atoms, args.num_samples, args.steps) == ("my model", [5], 3, 50)
    assert (args.condition, args.guidance_scale, args.seed) == (["heat_ref=-0.5"], 2.0, 1)


def _run_cli(command: str, out) -> int:
    from hfmat.cli import main

    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = str(out)
    return main(argv)


@pytest.mark.slow  # two CLI runs beside the app's own: ~6 s quiet, ~16 s at load average 10
def test_the_command_shown_reproduces_the_samples(models, tmp_path):
    """The page's `hfmat generate` / `hfmat diffuse` commands write the structures the app showed."""
    run = sampling.predict_structures(
        models,
        composition="SrTiO3",
        spacegroup="",
        num_samples=2,
        lm="cif-gpt2-perov5",
        diffusion="crystal-diffusion-perov5",
        seed=3,
        steps=10,
        folder=tmp_path / "app",
    )
    assert len(run.commands) == 2 and len(run.results["lm"]) == len(run.results["diffusion"]) == 2
    for command, key in zip(run.commands, ("lm", "diffusion")):
        out = tmp_path / key
        assert _run_cli(command, out) == 0
        for result in run.results[key]:
            assert result.structure is not None
            written = Structure.from_file(out / f"{result.stem}.cif")
            assert written.composition == result.structure.composition
            assert np.allclose(written.lattice.abc, result.structure.lattice.abc, atol=1e-4)
    with zipfile.ZipFile(run.zip_path) as archive:
        assert len(archive.namelist()) == 4


@pytest.mark.parametrize(
    ("composition", "lm", "diffusion", "message"),
    [
        ("", "cif-gpt2-perov5", None, "empty composition"),
        ("Xx2", "cif-gpt2-perov5", "crystal-diffusion-perov5", "unknown element 'Xx'"),
        ("Sr1.5TiO3", None, "crystal-diffusion-perov5", "positive whole numbers"),
        (
            "BaSrCaMgTiZrHfNbTaVCrMoWMnFeCoNiCuZnO20",
            "cif-gpt2-perov5",
            None,
            "more than the model.s context of 384",
        ),
        ("Sr10Ti10O30", None, "crystal-diffusion-perov5", "50 atoms is more than this model supports"),
        ("SrTiO3", None, None, "choose a language model, a diffusion pipeline or both"),
    ],
)
def test_bad_input_is_refused_before_sampling(models, tmp_path, composition, lm, diffusion, message):
    with pytest.raises(ValueError, match=message):
        sampling.predict_structures(
            models,
            composition=composition,
            spacegroup=None,
            num_samples=1,
            lm=lm,
            diffusion=diffusion,
            seed=0,
            folder=tmp_path,
        )
    assert not (tmp_path / "structures.zip").exists()


def test_the_app_gives_the_clis_message(models, tmp_path, capsys):
    from hfmat.cli import main

    assert main(["generate", "--composition", "Xx2", "--out", str(tmp_path / "cli")]) == 2
    cli = capsys.readouterr().err
    with pytest.raises(ValueError) as err:
        sampling.predict_structures(
            models, composition="Xx2", spacegroup=None, num_samples=1, lm="cif-gpt2-perov5", diffusion=None,
            seed=0, folder=tmp_path,
        )  # fmt: skip
    assert str(err.value) in cli


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "from 1 to 16"), (17, "from 1 to 16"), (2.5, "whole number"), (None, "give a whole")],
)
def test_counts_name_their_field(value, message):
    with pytest.raises(sampling.AppInputError, match=f"samples: .*{message}"):
        sampling.count("samples", value, 1, sampling.MAX_SAMPLES)


def test_conditions_text():
    assert sampling.parse_conditions(" heat_ref=-0.5,\n spacegroup = 3 ") == {
        "heat_ref": -0.5,
        "spacegroup": 3,
    }
    assert sampling.parse_conditions("  ") is None
    with pytest.raises(sampling.AppInputError, match="NAME=VALUE"):
        sampling.parse_conditions("heat_ref")
    with pytest.raises(sampling.AppInputError, match="must be a number"):
        sampling.parse_conditions("heat_ref=low")


def test_de_novo_needs_a_de_novo_pipeline(models, tmp_path):
    with pytest.raises(sampling.AppInputError, match="does not sample atom types"):
        sampling.generate_de_novo(
            models, model="crystal-diffusion-perov5", num_samples=1, num_atoms=5, seed=0, folder=tmp_path
        )
    with pytest.raises(ValueError, match="more than this model supports"):
        sampling.generate_de_novo(
            models, model="crystal-diffusion-perov5-gen", num_samples=1, num_atoms=99, seed=0, folder=tmp_path
        )
    run = sampling.generate_de_novo(
        models,
        model="crystal-diffusion-perov5-gen",
        num_samples=2,
        num_atoms=5,
        seed=0,
        steps=5,
        folder=tmp_path,
    )
    assert [len(r.structure) for r in run.results["diffusion"]] == [5, 5]
    assert run.commands == [
        "hfmat diffuse --model crystal-diffusion-perov5-gen --num-atoms 5 -n 2 --steps 5 --seed 0 --out denovo"
    ]


def test_a_prompt_reaches_the_text_pipeline_and_its_command(models, tmp_path):
    text = "crystal-diffusion-perov5-text"
    run = sampling.generate_de_novo(
        models, model=text, num_samples=2, num_atoms=None, seed=0, steps=5, prompt=" SrTiO3, a cubic crystal ",
        guidance_scale=2, folder=tmp_path,
    )  # fmt: skip
    assert [len(r.structure) for r in run.results["diffusion"]] == [5, 5]
    assert run.commands == [
        f"hfmat diffuse --model {text} -n 2 --steps 5 --prompt 'SrTiO3, a cubic crystal' --guidance-scale 2 "
        "--seed 0 --out denovo"
    ]
    assert (
        "--prompt"
        not in sampling.generate_de_novo(
            models, model=text, num_samples=1, num_atoms=None, seed=0, steps=2, prompt="  ", folder=tmp_path
        ).commands[0]
    )  # an empty prompt is the unconditional branch
    with pytest.raises(
        sampling.AppInputError, match="prompt: crystal-diffusion-perov5-gen has no text condition"
    ):
        sampling.generate_de_novo(
            models, model="crystal-diffusion-perov5-gen", num_samples=1, num_atoms=5, seed=0, prompt="SrTiO3",
            folder=tmp_path,
        )  # fmt: skip
    assert "samples from a description" in layout._conditions_text(models.entry(text))


@pytest.fixture
def conditioned(tiny_diffusion_pipeline, tmp_path):
    folder = tmp_path / "conditioned"
    spec = {"name": "heat_ref", "kind": "scalar", "mean": 0.0, "std": 1.0}
    tiny_diffusion_pipeline(True, conditions=[spec]).save_pretrained(folder)
    return Models.from_names([str(folder)])


def test_guidance_targets_reach_the_pipeline(conditioned, tmp_path):
    (name,) = conditioned.entries
    assert conditioned.entries[name].condition_names == ["heat_ref"]
    assert "training mean 0 ± 1" in conditioned.entries[name].describe_conditions()
    run = sampling.generate_de_novo(
        conditioned, model=name, num_samples=2, num_atoms=None, seed=0, steps=3, conditions="heat_ref=0.5",
        guidance_scale=2, folder=tmp_path,
    )  # fmt: skip
    assert len(run.results["diffusion"]) == 2
    assert "--condition heat_ref=0.5 --guidance-scale 2" in run.commands[0]
    with pytest.raises(ValueError, match="unknown condition 'gap'; this model's conditions: heat_ref"):
        sampling.generate_de_novo(
            conditioned,
            model=name,
            num_samples=1,
            num_atoms=4,
            seed=0,
            steps=3,
            conditions="gap=1",
            folder=tmp_path,
        )


def _component(demo, elem_id: str) -> dict:
    return next(c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def test_guidance_inputs_show_only_for_a_conditioned_model(models, conditioned):
    from hfmat.app.layout import build_app

    assert _component(build_app(models), "guidance")["props"]["visible"] is False
    assert _component(build_app(conditioned), "guidance")["props"]["visible"] is True


def test_upload_reads_a_cif_and_refuses_other_files(examples_dir, tmp_path):
    result, canonical = sampling.read_upload(examples_dir / "SrTiO3_perovskite.cif")
    assert result.valid and result.formula == "Sr1Ti1O3" and canonical.startswith("data_Sr1Ti1O3\n")
    (tmp_path / "notes.txt").write_text("just some notes\n")
    with pytest.raises(sampling.AppInputError, match="notes.txt: not a CIF hfmat can read"):
        sampling.read_upload(tmp_path / "notes.txt")
    (tmp_path / "image.cif").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(sampling.AppInputError, match="image.cif: not a CIF .a binary file."):
        sampling.read_upload(tmp_path / "image.cif")


def test_missing_gradio_names_the_extra(monkeypatch, capsys):
    from hfmat.app import build_app
    from hfmat.cli import main
    from hfmat.extras import MissingExtraError

    for name in [m for m in sys.modules if m.split(".")[0] == "gradio"] + ["gradio"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r'pip install "hfmat\[app\]"'):
        build_app()
    assert main(["app"]) == 2
    assert "hfmat app: error: the web app needs the package 'gradio'" in capsys.readouterr().err


def test_physics_columns_with_a_stand_in_potential(tmp_path):
    """Energy and E_hull against the potential's elemental ground states (a stand-in potential:
    -1 eV/atom for an element, -2 eV/atom for a compound, no forces), so E_hull is -1 eV/atom."""
    from hfmat.app.physics import add_physics
    from hfmat.physics.potentials import Potential, Prediction

    class Flat(Potential):
        name = "flat"
        description = "flat test potential"

        def _predict_one(self, atoms):
            per_atom = -1.0 if len(set(atoms.numbers)) == 1 else -2.0
            return Prediction(per_atom * len(atoms), np.zeros((len(atoms), 3)), np.zeros(6))

    s = srtio3()
    results = [Result("m", 0, s, validity_of(s)), Result("lm", 0, None, validity_of(s))]
    notes = add_physics(results, Flat(), cache_dir=tmp_path)
    assert results[0].energy == pytest.approx(-2.0) and results[0].e_hull == pytest.approx(-1.0)
    assert results[1].energy is None and "not the Materials Project hull" in notes[-1]
    row = summary_row(results[0], physics=True)
    assert row[-2:] == [-2.0, -1.0]


def test_unknown_space_group_is_refused(models, tmp_path):
    with pytest.raises(ValueError, match="Xyz"):
        sampling.predict_structures(
            models, composition="SrTiO3", spacegroup="Xyz", num_samples=1, lm="cif-gpt2-perov5",
            diffusion=None, seed=0, folder=tmp_path,
        )  # fmt: skip


def test_callback_errors_become_one_line_on_the_page():
    import gradio as gr

    from hfmat.app.layout import answer_errors

    @answer_errors
    def bad_input():
        raise sampling.AppInputError("samples: must be from 1 to 16, got 20")

    @answer_errors
    def bug():
        raise KeyError("boom")

    with pytest.raises(gr.Error) as err:
        bad_input()
    assert err.value.message == "samples: must be from 1 to 16, got 20" and err.value.title == "Input error"
    with pytest.raises(gr.Error) as err:
        bug()
    assert err.value.message == "internal error: KeyError: 'boom'"


def test_a_composition_outside_the_training_data_is_warned_about(models, tmp_path):
    """The page shows the warning `hfmat generate` prints (hfmat.scope): NaCl is no perovskite."""
    run = sampling.predict_structures(
        models,
        composition="NaCl",
        spacegroup="",
        num_samples=1,
        lm="cif-gpt2-perov5",
        diffusion=None,
        seed=0,
        folder=tmp_path / "app",
    )
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith("cif-gpt2-perov5: NaCl (2 atoms in the cell) is outside what the model")
    inside = sampling._outside_training(models.entry("cif-gpt2-perov5").folder, "SrTiO3")
    assert inside is None
