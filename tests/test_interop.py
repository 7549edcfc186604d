"""Every file hfmat writes for a user reads back whole in other programs (issue 13, item 1).

The shipped examples and 200 samples of each shipped model (the CIF language model, the
structure-prediction and the de novo diffusion pipelines) are written by each writer of
``hfmat.cif.export`` and read back by pymatgen, ASE and gemmi (gemmi reads CIF only; pymatgen has
no extended-XYZ reader of its own, ASE's is the one pymatgen users go through) and by hfmat's
own reader: each must give the same structure, with every site.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from hfmat.cif import cif_to_structure, structural_validity, structure_to_cif
from hfmat.cif.export import FORMATS, structure_to_standard_cif, structure_to_text
from hfmat.shipped import DIFFUSION_CSP, DIFFUSION_GEN, LM, shipped_model

NUM_SAMPLES = 200
#: perovskites for the structure-prediction prompts (20 samples each)
COMPOSITIONS = [
    "SrTiO3",
    "BaTiO3",
    "CaZrO3",
    "KNbO3",
    "LaAlO3",
    "NaTaO3",
    "PbTiO3",
    "BaSnO3",
    "SrZrO3",
    "LaGaO3",
]
STEPS = 10  # reverse-diffusion steps: enough for cells to write and read, not for good crystals

MATCHER = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
#: StructureMatcher (10 ms a pair) runs on the examples and on this many samples of each model per
#: reader; every structure gets the exact comparison below, which is stricter
MATCHED = 20
#: cell parameters (A, degrees) and fractional coordinates must agree to this
EXACT = 1e-4


def _ase(fmt: str):
    def read(text: str) -> Structure:
        from ase.io import read as ase_read
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(ase_read(io.StringIO(text), format=fmt))

    return read


def _gemmi(text: str) -> Structure:
    import gemmi

    small = gemmi.make_small_structure_from_block(gemmi.cif.read_string(text).sole_block())
    cell = small.cell
    sites = small.get_all_unit_cell_sites()
    lattice = Lattice.from_parameters(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    return Structure(lattice, [s.element.name for s in sites], [s.fract.tolist() for s in sites])


def _hfmat_file(fmt: str):
    """hfmat.cif.export.read_structure (what hfmat relax reads) on the text written to a file."""

    def read(text: str) -> Structure:
        import tempfile

        from hfmat.cif.export import read_structure

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"sample{FORMATS[fmt]}"
            path.write_text(text)
            return read_structure(path)

    return read


READERS = {
    "cif": {
        "hfmat": cif_to_structure,
        "hfmat file": _hfmat_file("cif"),
        "pymatgen": lambda text: Structure.from_str(text, fmt="cif"),
        "ase": _ase("cif"),
        "gemmi": _gemmi,
    },
    "poscar": {
        "pymatgen": lambda text: Structure.from_str(text, fmt="poscar"),
        "ase": _ase("vasp"),
        "hfmat file": _hfmat_file("poscar"),
    },
    "extxyz": {"ase": _ase("extxyz"), "hfmat file": _hfmat_file("extxyz")},
}


def _pipeline(name: str):
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(shipped_model(name))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def lm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = shipped_model(LM)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def lm_samples(lm):
    from hfmat.lm import generate_cifs

    model, tokenizer = lm
    per = NUM_SAMPLES // len(COMPOSITIONS)
    # validate=False: the validity checks (CrystalNN, spglib) are not what is tested here
    samples = generate_cifs(
        model, tokenizer, COMPOSITIONS, num_samples=per, batch_size=NUM_SAMPLES, seed=0, validate=False
    )
    assert len(samples) == NUM_SAMPLES
    return samples


@pytest.fixture(scope="module")
def sources(lm_samples) -> dict[str, list[Structure]]:
    from hfmat.cif import CifError
    from hfmat.examples import example_structures

    lm = []
    for sample in lm_samples:
        try:
            lm.append(cif_to_structure(sample.text))
        except CifError:  # an unreadable sample has no structure to hand over
            continue
    generator = torch.Generator().manual_seed(0)
    per = NUM_SAMPLES // len(COMPOSITIONS)
    csp = _pipeline(DIFFUSION_CSP)(
        compositions=COMPOSITIONS,
        num_samples=per,
        num_inference_steps=STEPS,
        corrector_steps=0,
        generator=generator,
    ).structures
    gen = _pipeline(DIFFUSION_GEN)(
        num_samples=NUM_SAMPLES, num_inference_steps=STEPS, corrector_steps=0, generator=generator
    ).structures
    out = {"examples": list(example_structures().values())}
    for name, structures in (("lm", lm), ("csp", csp), ("gen", gen)):
        # two atoms on one point (an invalid sample) are one site to every reader: such a structure
        # has no file that reads back whole, so only structurally valid samples are compared
        valid = [s for s in structures if structural_validity(s)[0]]
        print(f"{name}: {len(valid)} of {NUM_SAMPLES} samples structurally valid")
        assert len(valid) >= NUM_SAMPLES // 2, f"{name}: only {len(valid)} of {NUM_SAMPLES} samples valid"
        out[name] = valid
    return out


def _assert_same(original: Structure, read: Structure, where: str, match: bool = True) -> None:
    """The same number of sites, composition, cell parameters and, site for site, species and
    fractional coordinates (periodically, within EXACT); with ``match`` also StructureMatcher."""
    assert len(read) == len(original), f"{where}: {len(read)} sites read, {len(original)} written"
    assert read.composition.almost_equals(original.composition), (
        f"{where}: read {read.composition.formula}, wrote {original.composition.formula}"
    )
    cell = np.array([*original.lattice.abc, *original.lattice.angles])
    got = np.array([*read.lattice.abc, *read.lattice.angles])
    assert np.allclose(cell, got, atol=EXACT), f"{where}: cell {got.round(5)} read, {cell.round(5)} written"
    diff = original.frac_coords[:, None, :] - read.frac_coords[None, :, :]
    dist = np.abs(diff - np.round(diff)).max(axis=2)  # [written site, read site]
    same_species = np.array([[a.species == b.species for b in read] for a in original])
    dist[~same_species] = np.inf
    nearest = dist.argmin(axis=1)
    worst = float(dist[np.arange(len(original)), nearest].max())
    assert worst < EXACT and len(set(nearest.tolist())) == len(original), (
        f"{where}: a written site has no read site of its species within {EXACT} (worst {worst:.2g})"
    )
    if match:
        assert MATCHER.fit(original, read), f"{where}: StructureMatcher does not match the structure read"


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("source", ["examples", "lm", "csp", "gen"])
def test_written_files_read_back_whole(sources, source, fmt):
    structures = sources[source]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen/ASE readers warn about rounding; the counts are checked
        for i, structure in enumerate(structures):
            text = structure_to_text(structure, fmt)
            for reader, read in READERS[fmt].items():
                where = f"{source}[{i}] {fmt} read by {reader}"
                _assert_same(structure, read(text), where, match=source == "examples" or i < MATCHED)


def test_pipeline_cif_output_reads_whole_in_pymatgen():
    # before: out.cifs held the canonical text (asymmetric unit only) and pymatgen read 3 sites
    pipe = _pipeline(DIFFUSION_CSP)
    out = pipe(
        compositions=["SrTiO3"],
        num_samples=2,
        num_inference_steps=STEPS,
        corrector_steps=0,
        generator=torch.Generator().manual_seed(0),
        output_type="cif",
    )
    for cif, structure in zip(out.cifs, out.structures, strict=True):
        assert cif == structure_to_standard_cif(structure)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read = Structure.from_str(cif, fmt="cif")
        assert len(read) == 5 and read.composition.reduced_formula == "SrTiO3"
        _assert_same(structure, read, "output_type='cif' read by pymatgen")


def test_canonical_text_is_not_for_other_programs():
    # why the standard CIF exists: pymatgen reads the canonical text of SrTiO3 as a third of the cell
    from hfmat.examples import example_structures

    srtio3 = example_structures()["SrTiO3_perovskite"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(Structure.from_str(structure_to_cif(srtio3), fmt="cif")) == 3
        assert len(Structure.from_str(structure_to_standard_cif(srtio3), fmt="cif")) == 5
    assert len(cif_to_structure(structure_to_cif(srtio3))) == 5  # hfmat's reader expands it


def test_lm_sample_gives_its_standard_cif(lm, lm_samples):
    from hfmat.lm import generate_cifs

    model, tokenizer = lm
    samples = generate_cifs(model, tokenizer, ["SrTiO3"], num_samples=2, seed=0)
    read = [s for s in samples if s.structure is not None]
    assert read, "no sample of SrTiO3 could be read"
    for sample in read:
        assert sample.text.startswith("data_Sr1Ti1O3\n")  # the raw canonical text stays
        assert sample.cif == structure_to_standard_cif(sample.structure)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _assert_same(sample.structure, Structure.from_str(sample.cif, fmt="cif"), "sample.cif")
    assert all(s.structure is None and s.cif is None for s in lm_samples)  # validate=False: none


def test_cli_exports_a_canonical_file_for_other_programs(tmp_path, capsys):
    from hfmat.cli import main
    from hfmat.examples import example_structures

    srtio3 = example_structures()["SrTiO3_perovskite"]
    canonical = tmp_path / "srtio3.cif"  # what an older hfmat run, or the LM, wrote
    canonical.write_text(structure_to_cif(srtio3))
    out = tmp_path / "converted"
    for fmt in FORMATS:
        assert main(["cif", "export", str(canonical), "--format", fmt, "--out", str(out)]) == 0
        path = out / ("srtio3" + FORMATS[fmt])
        assert capsys.readouterr().out.strip() == str(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for reader, read in READERS[fmt].items():
                _assert_same(
                    srtio3, read(path.read_text()), f"hfmat cif export --format {fmt} read by {reader}"
                )
    assert main(["cif", "export", str(canonical), "--out", str(out)]) == 2  # never overwrites
    assert "exists; not overwritten" in capsys.readouterr().err
    assert main(["cif", "export", str(canonical)]) == 0  # one file: printed
    assert capsys.readouterr().out == structure_to_standard_cif(cif_to_structure(canonical.read_text()))


def test_read_structure_refuses_what_it_cannot_read(tmp_path):
    from hfmat.cif import CifError
    from hfmat.cif.export import read_structure

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: unknown structure file; use one of .cif, .vasp"):
        read_structure(tmp_path / "notes.txt")
    (tmp_path / "bad.vasp").write_text("not a poscar\n")
    with pytest.raises(CifError, match="bad.vasp: "):
        read_structure(tmp_path / "bad.vasp")
    (tmp_path / "molecule.xyz").write_text("1\n\nH 0 0 0\n")
    with pytest.raises(CifError, match="no periodic cell"):
        read_structure(tmp_path / "molecule.xyz")
    with pytest.raises(FileNotFoundError):
        read_structure(tmp_path / "missing.cif")
