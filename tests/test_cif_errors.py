"""Bad CIF text never crashes or hangs: CifError (naming the field or line) and nothing else."""

from __future__ import annotations

import functools
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import Composition, Structure

from hfmat.cif import CifError, check_validity, cif_to_structure, structure_to_cif
from hfmat.cif.reader import MAX_CHARS, MAX_SITES


@functools.cache
def _texts(examples_dir) -> list[str]:
    texts = []
    for name in ("SrTiO3_perovskite", "TiO2_rutile", "MgAl2O4_spinel", "ZnO_wurtzite"):
        path = examples_dir / f"{name}.cif"
        texts.append(structure_to_cif(Structure.from_file(path)))
        texts.append(path.read_text())  # pymatgen's P1 form
    return texts


@pytest.fixture(scope="module")
def srtio3(examples_dir) -> str:
    return structure_to_cif(Structure.from_file(examples_dir / "SrTiO3_perovskite.cif"))


def _raises(text: str, match: str) -> None:
    with pytest.raises(CifError, match=match):
        cif_to_structure(text)


def test_empty_and_garbage():
    _raises("", "data_")
    _raises("hello world", "data_")
    _raises("data_\n", "atom-site loop|no data block|syntax")
    _raises("\x00\x01\x02data_", "NUL")
    with pytest.raises(CifError):
        cif_to_structure(bytes(range(256)).decode("latin-1"))
    with pytest.raises(CifError, match="str"):
        cif_to_structure(b"data_x")


def test_truncated(srtio3):
    _raises(srtio3[: srtio3.index("_cell_length_c")], "_cell_length_c")
    _raises(srtio3[: srtio3.index("loop_")], "atom-site loop")
    cut = srtio3[: srtio3.index("Ti Ti1") + 9]  # a row cut after its x
    with pytest.raises(CifError):
        cif_to_structure(cut)


def test_missing_loop(srtio3):
    _raises(srtio3.split("loop_\n_atom_site_type_symbol")[0], "atom-site loop")


def test_unknown_element(srtio3):
    _raises(srtio3.replace("Ti Ti1", "Xq Ti1"), "unknown element 'Xq'")


def test_bad_numbers(srtio3):
    _raises(srtio3.replace("_cell_length_a 3.9050", "_cell_length_a -3.9050"), "_cell_length_a")
    _raises(srtio3.replace("_cell_length_b 3.9050", "_cell_length_b 1e308"), "_cell_length_b")
    _raises(srtio3.replace("_cell_length_c 3.9050", "_cell_length_c nan"), "_cell_length_c")
    _raises(srtio3.replace("_cell_angle_beta 90.0000", "_cell_angle_beta 190"), "_cell_angle_beta")
    _raises(srtio3.replace("_cell_angle_beta 90.0000", "_cell_angle_beta abc"), "_cell_angle_beta")
    _raises(srtio3.replace("Ti Ti1 1 0.5000", "Ti Ti1 1 1e300"), "Ti1")
    _raises(srtio3.replace("_Tables_number 221", "_Tables_number 231"), "_symmetry_Int_Tables_number")
    _raises(srtio3.replace("_Tables_number 221", "_Tables_number 200"), "_symmetry_space_group_name_H-M")
    # an unknown symbol with no number: read by pymatgen as written (P1), but no stated group
    report = check_validity(
        srtio3.replace("H-M Pm-3m", "H-M Qz9").replace("_symmetry_Int_Tables_number 221\n", "")
    )
    assert not report.valid and "unknown symbol 'Qz9'" in report.checks[0].reason
    _raises(srtio3.replace("O O2 3 0.0000", "O O2 x 0.0000"), "multiplicity")


def test_angles_that_make_no_cell(srtio3):
    text = srtio3.replace("H-M Pm-3m", "H-M P1").replace("_Tables_number 221", "_Tables_number 1")
    text = text.replace("_cell_angle_alpha 90.0000", "_cell_angle_alpha 170.0000")
    text = text.replace("_cell_angle_beta 90.0000", "_cell_angle_beta 170.0000")
    _raises(text, "lattice")


def test_a_million_atoms_is_refused_fast(srtio3):
    head = (
        srtio3.split("Sr Sr0")[0]
        .replace("H-M Pm-3m", "H-M P1")
        .replace("_Tables_number 221", "_Tables_number 1")
    )
    start = time.perf_counter()
    _raises(head + "H H0 1 0.1 0.2 0.3 1\n" * 1_000_000, f"more than the {MAX_CHARS}")
    _raises(head + "H H0 1 0.1 0.2 0.3 1\n" * 2000, "rows")
    _raises(srtio3.replace("O O2 3 ", "O O2 1000000 "), "multiplicity")
    # 12 general positions of Fm-3m (192 each) would give 2304 sites
    many = (
        srtio3.split("Sr Sr0")[0]
        .replace("H-M Pm-3m", "H-M Fm-3m")
        .replace("_Tables_number 221", "_Tables_number 225")
    )
    rows = "".join(f"H H{i} 1 0.{i + 11} 0.{i + 31} 0.{i + 51} 1\n" for i in range(12))
    _raises(many + rows, f"more than {MAX_SITES}")
    assert time.perf_counter() - start < 20


def _mutate(text: str, data) -> str:
    if not text:
        return data.draw(st.sampled_from(["", "data_", "loop_"]))
    kind = data.draw(st.sampled_from(["truncate", "flip", "delete_line", "swap_number", "insert"]))
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text)))]
    if kind == "flip":
        i = data.draw(st.integers(0, len(text) - 1))
        c = data.draw(st.characters(min_codepoint=0, max_codepoint=0x2FF))
        return text[:i] + c + text[i + 1 :]
    lines = text.split("\n")
    if kind == "delete_line":
        del lines[data.draw(st.integers(0, len(lines) - 1))]
        return "\n".join(lines)
    if kind == "insert":
        i = data.draw(st.integers(0, len(lines)))
        junk = data.draw(
            st.sampled_from(["loop_", "_cell_length_a 5", "'", ";", "data_X", "_atom_site_label"])
        )
        return "\n".join(lines[:i] + [junk] + lines[i:])
    numbers = list(re.finditer(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text))
    if not numbers:
        return text
    m = data.draw(st.sampled_from(numbers))
    new = data.draw(
        st.sampled_from(
            ["0", "-1", "1e308", "-0.0", "192", "230", "3", "1000", "0.5", "nan", "1e-300", "99999999"]
        )
        | st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.4f}")
    )
    return text[: m.start()] + new + text[m.end() :]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_cifs_raise_only_cif_error(examples_dir, data):
    text = data.draw(st.sampled_from(_texts(examples_dir)))
    for _ in range(data.draw(st.integers(1, 3))):
        text = _mutate(text, data)
    start = time.perf_counter()
    try:
        structure = cif_to_structure(text)
    except CifError as err:
        assert str(err)
    else:
        assert isinstance(structure, Structure) and 0 < len(structure) <= MAX_SITES
    report = check_validity(text)  # never raises
    assert report.checks and (report.valid or report.failed())
    assert time.perf_counter() - start < 30


# --------------------------------------------------------------------------------------------------
# issue 18: real-world files pymatgen reads, and numbers checked before pymatgen sees them

SI_SU = """data_Si
_cell_length_a 5.4307(2)
_cell_length_b 5.4307(2)
_cell_length_c 5.4307(2)
_cell_angle_alpha 90.000(5)
_cell_angle_beta 90.000(5)
_cell_angle_gamma 90.000(5)
_symmetry_space_group_name_H-M 'F d -3 m'
_symmetry_Int_Tables_number 227
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Si1 Si 0.125 0.125 0.125 1.0
"""

#: a molecular CIF: sites named by label, no _atom_site_type_symbol
LABELS_ONLY = """data_mol
_cell_length_a 7.1
_cell_length_b 8.2
_cell_length_c 9.3
_cell_angle_alpha 90
_cell_angle_beta 101.2
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
C1 0.10 0.20 0.30
C2 0.25 0.20 0.30
O1 0.10 0.35 0.30
H1A 0.05 0.15 0.40
"""

#: Si/Ge on one site with occupancies carrying standard uncertainties, written with its operations
DISORDERED_SU = (
    SI_SU.replace("data_Si", "data_SiGe")
    .replace(
        "_symmetry_Int_Tables_number 227\n", "loop_\n_symmetry_equiv_pos_as_xyz\n'x, y, z'\n'-x, -y, -z'\n"
    )
    .replace("Si1 Si 0.125 0.125 0.125 1.0", "Si1 Si 0.1 0.2 0.3 0.48(2)\nGe1 Ge 0.1 0.2 0.3 0.52(2)")
)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("\ufeff" + SI_SU, SI_SU),  # a UTF-8 byte-order mark, decoded as text
        (SI_SU, SI_SU),  # standard uncertainties on lengths and angles
        ("# Kristallstruktur (Müller, 5 Å)\n" + SI_SU, SI_SU),  # non-ASCII in a comment
        (SI_SU.replace("data_Si", "data_Si\n_publ_author_name 'Søren Ångström'"), SI_SU),  # in quotes
        (LABELS_ONLY, LABELS_ONLY),
    ],
)
def test_real_world_files_pymatgen_reads_are_read(text, plain):
    """Read as pymatgen reads the plain text (no mark, no non-ASCII)."""
    expected = Structure.from_str(plain, fmt="cif")
    structure = cif_to_structure(text)
    assert structure.composition == expected.composition
    assert structure.lattice.abc == pytest.approx(expected.lattice.abc)


def test_disordered_cif_with_uncertainties_is_read_with_disorder():
    structure = cif_to_structure(DISORDERED_SU, disorder=True)
    assert not structure.is_ordered
    assert structure.composition.almost_equals(Composition({"Si": 0.96, "Ge": 1.04}))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0.48(2)", "1.5", "_atom_site_occupancy of atom-site row 1 .'Si1'.: 1.5 is outside"),
        ("0.48(2)", "0", "_atom_site_occupancy .*outside"),
        ("0.48(2)", "-0.5", "_atom_site_occupancy .*outside"),
        ("0.48(2)", "nan", "_atom_site_occupancy .*not a finite number"),
        ("Ge1 Ge", "Ge1 Xq", "unknown element 'Xq'"),
        ("0.1 0.2 0.3 0.52", "0.1 inf 0.3 0.52", "_atom_site_fract_y of atom-site row 2 .'Ge1'.*finite"),
        ("0.1 0.2 0.3 0.52", "0.1 0.2 1e15 0.52", "_atom_site_fract_z .*out of range"),
        ("_cell_length_b 5.4307(2)", "_cell_length_b 0.05", "thinner than 0.1 A"),
        ("_cell_length_c 5.4307(2)", "_cell_length_c -1", "_cell_length_c"),
        ("_cell_angle_beta 90.000(5)", "_cell_angle_beta 1e309", "_cell_angle_beta"),
        ("_cell_length_a 5.4307(2)", "_cell_length_a 5.4\ufffd307", "line 2: .* non-ASCII"),
        ("Ge1 Ge", "Ge1 G\u00e9", "line .* non-ASCII"),
    ],
)
def test_numbers_are_checked_before_pymatgen_reads_them(old, new, message):
    assert old in DISORDERED_SU
    with pytest.raises(CifError, match=message):
        cif_to_structure(DISORDERED_SU.replace(old, new), disorder=True)


def test_occupancies_on_one_site_that_sum_above_one_are_refused():
    text = DISORDERED_SU.replace("0.48(2)", "0.7").replace("0.52(2)", "0.7")
    with pytest.raises(CifError, match="[Oo]ccupanc"):
        cif_to_structure(text, disorder=True)


@pytest.mark.parametrize("unit", ["\n", " \n", "\xa0\n"])
def test_long_runs_of_blank_lines_are_read_in_linear_time(srtio3, unit):
    """pymatgen's block split (^\\s*data_) was quadratic in blank lines: 160,000 took 94 s before
    the reader collapsed them; 300,000 here."""
    start = time.perf_counter()
    text = srtio3.replace("loop_", unit * 300_000 + "loop_", 1)
    assert len(cif_to_structure(text, time_limit=0)) == 5
    _raises("data_x\n" + unit * 300_000 + "_cell_length_a 5\n", "atom-site loop")
    assert time.perf_counter() - start < 20
