"""hfmat.lm.rewards: reward values on the example structures, the lowest reward for bad texts,
weights, and the caches (a structure is relaxed once however it is written). The physics tests
relax one 5-atom cell with CHGNet for a few steps and skip without the ``physics`` extra."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from pymatgen.core import Composition, Structure

from hfmat.cif import structure_to_cif
from hfmat.cif.validity import CHECKS
from hfmat.lm.rewards import CifReward, RewardError, parse_weights, prompt_target

HAS_PHYSICS = importlib.util.find_spec("chgnet") is not None
needs_physics = pytest.mark.skipif(
    not HAS_PHYSICS, reason='the physics extra is not installed: pip install "hfmat[physics]"'
)
STO_PROMPT = "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n"


@pytest.fixture(scope="module")
def canonical(examples_dir):
    """Canonical CIF text of each example structure, by file stem."""
    return {p.stem: structure_to_cif(Structure.from_file(p)) for p in sorted(examples_dir.glob("*.cif"))}


def test_parse_weights():
    assert parse_weights(None) == {"validity": 1.0}
    assert parse_weights("validity, energy=0.5,composition=0") == {"validity": 1.0, "energy": 0.5}
    with pytest.raises(RewardError, match="unknown reward term 'energ'"):
        parse_weights("energ=1")
    with pytest.raises(RewardError, match="not a number"):
        parse_weights("validity=high")
    with pytest.raises(RewardError, match="at least one term"):
        parse_weights("validity=0")
    with pytest.raises(RewardError, match="needs a reference hull"):
        CifReward("e_hull=1")


def test_prompt_target():
    t = prompt_target(STO_PROMPT)
    assert t.composition == Composition("SrTiO3") and t.spacegroup == 221
    assert prompt_target("data_").composition is None and prompt_target(None).spacegroup is None


def test_every_example_is_valid_and_scores_its_own_prompt_highest(canonical):
    reward = CifReward("validity=1,composition=1,spacegroup=1")
    texts = list(canonical.values())
    own = reward.score(texts, [t.split("\n", 1)[0] + "\n" + t.split("\n", 2)[1] + "\n" for t in texts])
    assert all(s.valid and s.total == pytest.approx(3.0) for s in own), [s.terms for s in own]
    # prompted for SrTiO3 in Pm-3m: only the perovskite fits both
    as_sto = dict(zip(canonical, reward.score(texts, [STO_PROMPT] * len(texts))))
    assert as_sto["SrTiO3_perovskite"].total == pytest.approx(3.0)
    others = [s for name, s in as_sto.items() if name != "SrTiO3_perovskite"]
    assert all(s.terms["composition"] == 0 and s.terms["spacegroup"] == 0 for s in others)
    assert all(s.total == pytest.approx(1.0) for s in others)


def test_partial_validity_and_half_credit_for_the_reduced_formula(canonical, examples_dir):
    reward = CifReward("validity=1,composition=1")
    # pymatgen's own P1 file of a cubic crystal fails the strict space-group check alone
    raw = (examples_dir / "SrTiO3_perovskite.cif").read_text()
    (score,) = reward.score([raw], [STO_PROMPT])
    assert not score.valid
    assert score.terms["validity"] == pytest.approx((len(CHECKS) - 1) / len(CHECKS))
    (doubled,) = reward.score([canonical["SrTiO3_perovskite"]], ["data_Sr2Ti2O6\n"])
    assert doubled.terms["composition"] == 0.5


def test_bonds_term_is_dense(canonical):
    reward = CifReward("bonds=1")
    sto = canonical["SrTiO3_perovskite"]
    stretched = [sto.replace("3.9050", f"{a:.4f}") for a in (3.905, 5.6, 5.8, 6.0)]
    scores = reward.score(stretched, [STO_PROMPT] * len(stretched))
    bonds = [s.terms["bonds"] for s in scores]
    assert bonds[0] == 1.0 and scores[0].valid
    assert not any(s.valid for s in scores[1:])
    # every bond fails in all three (bond_fraction 0), but the soft score sees them come closer
    assert bonds[0] > bonds[1] > bonds[2] > bonds[3] > 0.0, bonds


def test_match_term_scores_closeness_to_a_reference_of_the_prompted_composition(canonical, examples_dir):
    sto = Structure.from_file(examples_dir / "SrTiO3_perovskite.cif")
    with pytest.raises(RewardError, match="needs reference structures"):
        CifReward("match=1")
    reward = CifReward("match=1", references=[sto, Structure.from_file(examples_dir / "NaCl_rocksalt.cif")])
    # the reference itself, the same cell with its O moved off their sites (close, not exact), and
    # the cell stretched 1.8x along a (no longer a match)
    moved = sto.copy()
    moved.translate_sites([i for i, sp in enumerate(moved.species) if sp.symbol == "O"], [0.04, 0, 0])
    far = Structure(sto.lattice.matrix * [[1.8], [1.0], [1.0]], sto.species, sto.frac_coords)
    texts = [canonical["SrTiO3_perovskite"], structure_to_cif(moved), structure_to_cif(far)]
    exact, close, none = (s.terms["match"] for s in reward.score(texts, [STO_PROMPT] * 3))
    assert exact == pytest.approx(1.0) and 0.0 < close < 1.0 and none == 0.0, (exact, close, none)
    # prompted for a composition with no reference: nothing to match; prompted NaCl: not this one
    assert reward.score(texts[:1], ["data_Ba1Ti1O3\n"])[0].terms["match"] == 0.0
    assert reward.score(texts[:1], ["data_Na4Cl4\n"])[0].terms["match"] == 0.0


def test_valid_match_counts_the_match_only_for_a_valid_structure(canonical, examples_dir):
    sto = Structure.from_file(examples_dir / "SrTiO3_perovskite.cif")
    with pytest.raises(RewardError, match="valid_match term needs reference structures"):
        CifReward("valid_match=1")
    reward = CifReward("match=1,valid_match=1", references=[sto])
    # the cell shrunk to 0.6x: the matcher scales volumes, so it still matches exactly, but every
    # bond is far too short
    shrunk = Structure(sto.lattice.matrix * 0.6, sto.species, sto.frac_coords)
    same, small = reward.score([canonical["SrTiO3_perovskite"], structure_to_cif(shrunk)], [STO_PROMPT] * 2)
    assert same.valid and same.terms["valid_match"] == pytest.approx(1.0)
    assert not small.valid and small.terms["match"] == pytest.approx(1.0)
    assert small.terms["valid_match"] == 0.0
    assert same.total == pytest.approx(2.0) and small.total == pytest.approx(1.0)
    # weighted alone, it never runs the matcher for an invalid text
    alone = CifReward("valid_match=1", references=[sto])
    assert alone.score([structure_to_cif(shrunk)], [STO_PROMPT])[0].total == 0.0 and not alone._match


def test_bad_texts_get_the_lowest_reward_and_never_raise(canonical):
    reward = CifReward({"validity": 2.0, "composition": 1.0, "spacegroup": -0.5})
    assert reward.lowest == pytest.approx(-0.5) and reward.highest == pytest.approx(3.0)
    broken = canonical["SrTiO3_perovskite"][:150]  # cut mid-cell
    bad = ["", "garbage", broken, None, 42, "data_\n_cell_length_a -1\n"]
    scores = reward.score(bad)
    assert [s.total for s in scores] == [reward.lowest] * len(bad)
    assert all(s.error for s in scores)
    assert reward(bad[:2]) == [reward.lowest] * 2
    assert reward([canonical["NaCl_rocksalt"]])[0] > reward.lowest
    with pytest.raises(RewardError, match="2 prompts for 1 texts"):
        reward.score(["x"], ["a", "b"])


def test_validity_is_checked_once_per_text(canonical, monkeypatch):
    import hfmat.cif.validity as validity

    calls = []
    real = validity.check_validity
    monkeypatch.setattr(validity, "check_validity", lambda t, mode: calls.append(t) or real(t, mode))
    reward = CifReward()
    text = canonical["ZnO_wurtzite"]
    first = reward([text, text])
    second = reward([text])
    assert len(calls) == 1 and first == [1.0, 1.0] and second == [1.0]


@needs_physics
def test_energy_and_hull_terms_relax_each_structure_once(canonical, examples_dir):
    from pymatgen.analysis.phase_diagram import PDEntry

    from hfmat.physics import load_potential
    from hfmat.physics.hull import ReferenceHull

    sto = canonical["SrTiO3_perovskite"]
    raw = (examples_dir / "SrTiO3_perovskite.cif").read_text()  # the same structure, written in P1
    pot = load_potential("chgnet")
    plain = CifReward("energy=1", potential=pot, steps=5)
    with torch.no_grad():  # as MCTS decoding calls it: CHGNet's forces still need autograd
        (a,) = plain.score([sto])
    assert a.error is None and plain.stats["relaxed"] == 1
    (b,) = plain.score([raw])
    assert plain.stats["relaxed"] == 1 and plain.stats["physics_cache_hits"] == 1
    assert a.energy_per_atom == b.energy_per_atom and -9.5 < a.energy_per_atom < -7.5  # CHGNet: ~ -8.4
    assert a.total == pytest.approx(-a.energy_per_atom)
    # a hull with SrTiO3 itself at a known energy: E_hull is the difference
    at = a.energy_per_atom + 0.25
    entries = [PDEntry(Composition(el), 0.0) for el in ("Sr", "Ti", "O")]
    entries.append(PDEntry(Composition("SrTiO3"), at * 5))
    hull = ReferenceHull(entries, "chgnet", 1, ("O", "Sr", "Ti"))
    reward = CifReward("validity=1,e_hull=2", potential=pot, hull=hull, steps=5)
    (c,) = reward.score([sto])
    assert c.e_above_hull == pytest.approx(-0.25, abs=1e-6)
    assert c.total == pytest.approx(1.0 + 2 * 0.25, abs=1e-6)
    # an element outside the hull: the e_hull term takes its lowest value, no exception
    (d,) = reward.score([canonical["NaCl_rocksalt"]])
    assert d.terms["e_hull"] == reward.bounds["e_hull"][0] and "not in the reference hull" in d.error
