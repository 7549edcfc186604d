"""hfmat.data.graph: the Niggli graph convention and the variable-size collator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.transformations.standard_transformations import RotationTransformation

from hfmat.data.graph import GraphCollator, GraphError, graph_to_structure, structure_to_graph
from hfmat.examples import example_structures as _build_examples

_EXAMPLES: dict[str, Structure] = {}


def example_structures() -> dict[str, Structure]:
    """The example crystals, built once per test session (building them takes about a second)."""
    if not _EXAMPLES:
        _EXAMPLES.update(_build_examples())
    return {name: s.copy() for name, s in _EXAMPLES.items()}


@pytest.mark.parametrize(
    "name",
    [
        "LiFeO2_P1",
        "MgAl2O4_spinel",
        "NaCl_rocksalt",
        "Si_diamond",
        "SrTiO3_perovskite",
        "TiO2_rutile",
        "ZnO_wurtzite",
    ],
)
def test_graph_round_trip_and_convention(name):
    s = example_structures()[name]
    g = structure_to_graph(s)
    assert set(g) == {"atom_types", "frac_coords", "lattice", "num_atoms"}
    assert g["num_atoms"] == len(s) == len(g["atom_types"]) == len(g["frac_coords"])
    frac = np.array(g["frac_coords"])
    assert frac.shape == (len(s), 3) and (frac >= 0).all() and (frac < 1).all()
    lat = np.array(g["lattice"])
    assert lat.shape == (3, 3)
    # c along +z, a in the xz plane (pymatgen's from_parameters orientation)
    assert abs(lat[0, 1]) < 1e-9 and abs(lat[2, 0]) < 1e-9 and abs(lat[2, 1]) < 1e-9 and lat[2, 2] > 0
    # the lattice is Niggli-reduced
    assert Lattice(lat).get_niggli_reduced_lattice().abc == pytest.approx(Lattice(lat).abc, abs=1e-6)
    assert sorted(g["atom_types"]) == sorted(site.specie.Z for site in s)
    back = graph_to_structure(g["atom_types"], g["frac_coords"], g["lattice"])
    assert StructureMatcher().fit(s, back)
    assert back.volume == pytest.approx(s.volume, rel=1e-9)


def test_rotation_and_supercell_setting_invariance():
    s = example_structures()["LiFeO2_P1"]
    g = structure_to_graph(s)
    rotated = RotationTransformation([1, 2, 3], 40).apply_transformation(s)
    assert np.allclose(structure_to_graph(rotated)["lattice"], g["lattice"], atol=1e-8)
    # an equivalent but skewed basis of the same cell reduces to the same lattice parameters
    skew = s.copy()
    skew.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    assert len(skew) == len(s)
    g2 = structure_to_graph(skew)
    assert Lattice(g2["lattice"]).abc == pytest.approx(Lattice(g["lattice"]).abc, abs=1e-6)


def test_frac_coords_wrapped_below_one():
    s = Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[-1e-17, 1.0, 0.0], [0.5, 0.5, 0.5]])
    frac = np.array(structure_to_graph(s)["frac_coords"])
    assert (frac >= 0).all() and (frac < 1).all()


def test_disordered_structure_is_rejected():
    s = Structure(Lattice.cubic(3.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    with pytest.raises(GraphError, match="disordered"):
        structure_to_graph(s)


def test_collator_batches_variable_sizes():
    graphs = [structure_to_graph(s) for s in example_structures().values()]
    graphs[1]["heat_ref"] = 1.5
    graphs[0]["heat_ref"] = -2.0
    sizes = [g["num_atoms"] for g in graphs]
    out = GraphCollator()(graphs)
    assert out["atom_types"].dtype == torch.long and out["atom_types"].shape == (sum(sizes),)
    assert out["frac_coords"].dtype == torch.float32 and out["frac_coords"].shape == (sum(sizes), 3)
    assert out["lattices"].shape == (len(graphs), 3, 3)
    assert out["num_atoms"].tolist() == sizes
    assert torch.equal(torch.bincount(out["batch"]), out["num_atoms"])
    assert out["batch"].tolist() == sorted(out["batch"].tolist())
    # atoms of crystal 3 are exactly its own atoms
    start = sum(sizes[:3])
    assert out["atom_types"][start : start + sizes[3]].tolist() == graphs[3]["atom_types"]
    assert torch.allclose(out["lattices"][3], torch.tensor(graphs[3]["lattice"], dtype=torch.float32))
    props = GraphCollator(properties=["heat_ref"])(graphs[:2])
    assert props["heat_ref"].tolist() == [-2.0, 1.5]
    with pytest.raises(GraphError, match="heat_ref"):
        GraphCollator(properties=["heat_ref"])(graphs[:3])


def test_collator_accepts_torch_rows_and_checks_counts():
    g = structure_to_graph(example_structures()["SrTiO3_perovskite"])
    row = {k: torch.as_tensor(v) for k, v in g.items()}
    out = GraphCollator()([row, g])
    assert out["num_atoms"].tolist() == [5, 5]
    bad = dict(g, num_atoms=4)
    with pytest.raises(GraphError, match="num_atoms"):
        GraphCollator()([bad])
    with pytest.raises(GraphError, match="lacks"):
        GraphCollator()([{"atom_types": [1]}])


@settings(max_examples=25, deadline=None)
@given(
    abc=st.tuples(*[st.floats(2.5, 9.0)] * 3),
    angles=st.tuples(*[st.floats(70.0, 110.0)] * 3),
    frac=st.lists(st.tuples(*[st.floats(-2.0, 2.0)] * 3), min_size=1, max_size=6),
    z=st.integers(1, 94),
)
def test_graph_round_trip_property(abc, angles, frac, z):
    """Any valid cell and coordinates (also outside [0, 1)): the graph is the Niggli cell, rotated."""
    try:
        lattice = Lattice.from_parameters(*abc, *angles)
    except ValueError:
        assume(False)
    assume(lattice.volume > 5.0)
    s = Structure(lattice, [z] * len(frac), frac)
    g = structure_to_graph(s)
    x = np.array(g["frac_coords"])
    assert ((x >= 0) & (x < 1)).all() and g["num_atoms"] == len(frac)
    reduced = s.get_reduced_structure("niggli")
    mat, ref = np.array(g["lattice"]), reduced.lattice.matrix
    assert np.allclose(mat @ mat.T, ref @ ref.T, atol=1e-8)  # same basis up to a rotation
    delta = x - reduced.frac_coords
    assert np.allclose(delta - np.round(delta), 0.0, atol=1e-9)  # same sites, wrapped
    back = graph_to_structure(g["atom_types"], g["frac_coords"], g["lattice"])
    assert back.volume == pytest.approx(s.volume, rel=1e-6)
    assert StructureMatcher(primitive_cell=False, scale=False).fit(s, back)
