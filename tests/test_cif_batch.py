"""Batch helpers (process pool, order kept, one error per bad item) and the ``hfmat cif`` CLI."""

from __future__ import annotations

import pytest
from pymatgen.core import Structure

from hfmat.cif import (
    ValidityReport,
    canonicalize_many,
    check_validity_many,
    cif_to_structure,
    parse_many,
    structure_to_cif,
)
from hfmat.cli import main


@pytest.fixture(scope="module")
def examples_texts(examples_dir) -> list[str]:
    return [p.read_text() for p in sorted(examples_dir.glob("*.cif"))]


def test_check_canonical_many_judges_structures_as_canonical_cifs(examples_texts):
    """A structure that canonicalizes gets its strict report; one that does not gets (False, None)."""
    from pymatgen.core import Lattice

    from hfmat.cif.batch import check_canonical_many

    good = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    squeezed = Structure(Lattice.cubic(2.2), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    checked = check_canonical_many(
        [good, "garbage", squeezed, examples_texts[0]], num_workers=1, progress=False
    )
    assert [ok for ok, _ in checked] == [True, False, True, True]
    assert checked[0][1].valid and checked[1][1] is None
    assert not checked[2][1].valid and "bond_lengths" in [c.name for c in checked[2][1].failed()]


def test_batch_helpers_keep_order_and_errors(examples_dir, examples_texts):
    sources = [*examples_texts[:3], "garbage", examples_texts[3]]
    for workers in (1, 2):
        results = canonicalize_many(sources, num_workers=workers, chunk_size=2, progress=False)
        assert [r.index for r in results] == list(range(len(sources)))
        assert [r.ok for r in results] == [True, True, True, False, True]
        assert "data_" in results[3].error
        for r, src in zip(results, sources, strict=True):
            if r.ok:
                assert r.value == structure_to_cif(cif_to_structure(src))
    texts = [r.value for r in results if r.ok] + ["data_x\n"]
    parsed = parse_many(texts, num_workers=2, chunk_size=1, progress=False)
    assert [r.ok for r in parsed] == [True] * 4 + [False]
    assert all(isinstance(r.value, Structure) for r in parsed[:4])
    reports = check_validity_many(texts, num_workers=2, chunk_size=3, progress=False)
    assert all(r.ok and isinstance(r.value, ValidityReport) for r in reports)
    assert [r.value.valid for r in reports] == [True] * 4 + [False]


def test_canonicalize_many_accepts_structures(examples_dir):
    structure = Structure.from_file(examples_dir / "TiO2_rutile.cif")
    (result,) = canonicalize_many([structure], num_workers=1, progress=False)
    assert result.value == structure_to_cif(structure)


def test_cli_canonicalize_and_check(examples_dir, tmp_path, capsys):
    path = examples_dir / "SrTiO3_perovskite.cif"
    assert main(["cif", "canonicalize", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == structure_to_cif(Structure.from_file(path))
    canonical = tmp_path / "srtio3.cif"
    canonical.write_text(out)
    bad = tmp_path / "bad.cif"
    bad.write_text(out.replace("data_Sr1Ti1O3", "data_Sr2Ti1O3"))
    assert main(["cif", "check", str(canonical)]) == 0
    out = capsys.readouterr().out
    assert "PASS space_group" in out and "(subgroup mode)" in out
    assert main(["cif", "check", str(canonical), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: INVALID" in out and "FAIL formula_consistency" in out
    assert main(["cif", "canonicalize", str(tmp_path / "missing.cif")]) == 2
    assert "missing.cif" in capsys.readouterr().err
