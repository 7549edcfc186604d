"""Rewards for generated CIF texts: what MCTS decoding (:mod:`hfmat.lm.mcts`) and RL fine-tuning
(``training/train_cif_lm_rl.py``) maximise. docs/reward_guidance.md explains the choices.

A reward is a weighted sum of terms, each computed on the whole text the model wrote (prompt
included) and the prompt it was given:

- ``validity``: the fraction of :data:`hfmat.cif.validity.CHECKS` that ``check_validity(text,
  mode="strict")`` passes (1.0 exactly when the text is valid);
- ``bonds``: the soft bond-length score of that check (``ValidityReport.bond_score``: each bond
  scores 1 inside the tolerance band and falls linearly to 0 one more tolerance outside it), 0.0
  when no bonds could be checked; a dense signal for the check generated CIFs fail most;
- ``composition``: 1.0 when the structure's cell composition is the prompted one, 0.5 when only
  the reduced formula is, else 0.0 (no prompt: the text's own ``data_`` line is the promise);
- ``spacegroup``: 1.0 when spglib finds the prompted space group in the structure (strict, as the
  validity check), else 0.0; 1.0 when the prompt names none;
- ``match``: how closely the structure matches a known structure of the prompted cell composition
  (``references``, e.g. the training split's): ``1 - rms / 0.5`` for the best match under the CSP
  matcher (``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``, rms normalised as there), 0.0
  when none matches or the composition has no reference; the k=1 match rate and RMSE as a reward;
- ``valid_match``: the ``match`` term when the text passes every validity check, else 0.0: a close
  but invalid structure earns nothing from it, so a valid structure that still matches is preferred
  to a closer invalid one (about a fifth of Perov-5's own DFT structures fail the bond-length rule);
- ``energy``: minus the potential's energy per atom (eV/atom) after a short relaxation
  (``hfmat.physics.relax``), clipped to ``energy_range``;
- ``e_hull``: minus the energy above a :class:`hfmat.physics.hull.ReferenceHull` (eV/atom) after
  the same relaxation, clipped to ``e_hull_range``.

Every term has bounds, so a reward has a lowest value (:attr:`CifReward.lowest`): a text that does
not parse, is not a string, or whose scoring raises gets exactly that, never an exception; a term
that cannot be computed (relaxation failed, an element outside the hull) takes its lowest value.
The physics terms are cached by canonical CIF (``hfmat.cif.structure_to_cif``) and the validity
terms by text, so the same structure is relaxed once however often it is sampled. The physics
module is imported only when a physics term has a weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "MATCH_TERMS",
    "TERMS",
    "CifReward",
    "RewardError",
    "RewardScore",
    "parse_weights",
    "prompt_target",
]

#: The reward terms, in the order they are reported.
TERMS = ("validity", "bonds", "composition", "spacegroup", "match", "valid_match", "energy", "e_hull")
MATCH_TERMS = ("match", "valid_match")
PHYSICS_TERMS = ("energy", "e_hull")


class RewardError(ValueError):
    """A reward specification that cannot be used (unknown term, bad weight, missing hull)."""


def parse_weights(spec: str | dict | None) -> dict[str, float]:
    """``"validity=1,energy=0.5"`` (or a dict) -> {term: weight}; None -> validity alone.

    A term without ``=`` has weight 1. Unknown terms and non-finite weights raise
    :class:`RewardError` naming them.
    """
    if spec is None:
        return {"validity": 1.0}
    if isinstance(spec, str):
        items = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, _, value = part.partition("=")
            try:
                items[name.strip()] = float(value) if value.strip() else 1.0
            except ValueError:
                raise RewardError(f"reward term {part!r}: the weight {value!r} is not a number") from None
        spec = items
    weights = {}
    for name, value in dict(spec).items():
        if name not in TERMS:
            raise RewardError(f"unknown reward term {name!r}; the terms are {', '.join(TERMS)}")
        value = float(value)
        if not math.isfinite(value):
            raise RewardError(f"reward term {name!r}: weight {value} is not finite")
        if value != 0:
            weights[name] = value
    if not weights:
        raise RewardError("a reward needs at least one term with a non-zero weight")
    return weights


@dataclass(frozen=True)
class PromptTarget:
    """What a prompt asks for: the cell composition (pymatgen) and the space-group number."""

    composition: object | None
    spacegroup: int | None


def prompt_target(prompt: str | None) -> PromptTarget:
    """The composition and space group a prompt (``data_Sr1Ti1O3\\n`` and optionally the
    ``_symmetry_space_group_name_H-M`` line) asks for; an empty or unconditional prompt asks for
    nothing."""
    from pymatgen.core import Composition

    from hfmat.chemistry import space_group_number

    comp, number = None, None
    for line in (prompt or "").splitlines():
        line = line.strip()
        if line.startswith("data_") and len(line) > len("data_"):
            try:
                comp = Composition(line[len("data_") :])
            except Exception:  # noqa: BLE001 - not a formula: the prompt asks for no composition
                comp = None
        elif line.startswith("_symmetry_space_group_name_H-M"):
            try:
                number = space_group_number(line.split(None, 1)[1].strip())
            except (IndexError, ValueError):
                number = None
    return PromptTarget(comp, number)


@dataclass
class RewardScore:
    """One text's reward: ``total`` (the weighted sum), each weighted term's value, and what the
    physics terms measured (None when not computed)."""

    total: float
    terms: dict[str, float]
    valid: bool = False
    structure: object | None = field(default=None, repr=False)
    canonical: str | None = field(default=None, repr=False)
    energy_per_atom: float | None = None
    e_above_hull: float | None = None
    error: str | None = None


@dataclass
class _Physics:
    energy_per_atom: float | None
    e_above_hull: float | None
    error: str | None


class CifReward:
    """A weighted sum of reward terms (:data:`TERMS`) over generated CIF texts.

    ``weights``: {term: weight} or a spec string (:func:`parse_weights`); default validity alone.
    ``potential``: a name (``"chgnet"``, ``"sevennet"``) or a loaded ``hfmat.physics`` potential,
    used only by the physics terms. ``hull``: a ``ReferenceHull`` (needed by ``e_hull``).
    ``fmax``/``steps``/``batch_size``: the short relaxation (eV/Å, FIRE steps, cells per call).
    ``references``: the known structures the ``match`` term compares with (pymatgen Structures,
    grouped by cell composition here; needed by that term).

    Call it on texts (and their prompts) for the totals, or use :meth:`score` for the details.
    ``stats`` counts calls, texts scored, and relaxations run versus taken from the cache.
    """

    def __init__(
        self,
        weights: str | dict | None = None,
        potential="chgnet",
        hull=None,
        fmax: float = 0.1,
        steps: int = 100,
        batch_size: int = 8,
        energy_range: tuple[float, float] = (-12.0, 2.0),
        e_hull_range: tuple[float, float] = (-1.0, 2.0),
        references: Sequence | None = None,
    ):
        self.weights = parse_weights(weights)
        if "e_hull" in self.weights and hull is None:
            raise RewardError(
                "the e_hull term needs a reference hull (hull=hfmat.physics.reference_hull(...))"
            )
        if any(t in self.weights for t in MATCH_TERMS) and not references:
            raise RewardError(
                f"the {' and '.join(t for t in MATCH_TERMS if t in self.weights)} term needs reference "
                "structures (references=[Structure, ...], e.g. the training split's)"
            )
        self.references: dict[str, list] = {}  # cell formula -> structures
        for structure in references or ():
            self.references.setdefault(_cell_key(structure.composition), []).append(structure)
        for name, (lo, hi) in (("energy_range", energy_range), ("e_hull_range", e_hull_range)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise RewardError(f"{name} must be two finite numbers, low < high; got {(lo, hi)}")
        if not (fmax > 0 and steps >= 0 and batch_size >= 1):
            raise RewardError(
                f"need fmax > 0, steps >= 0, batch_size >= 1 (got {fmax}, {steps}, {batch_size})"
            )
        self.potential = potential
        self.hull = hull
        self.fmax, self.steps, self.batch_size = float(fmax), int(steps), int(batch_size)
        # term -> (lowest, highest) value; the physics terms are minus the clipped energies
        self.bounds = {
            "validity": (0.0, 1.0),
            "bonds": (0.0, 1.0),
            "composition": (0.0, 1.0),
            "spacegroup": (0.0, 1.0),
            "match": (0.0, 1.0),
            "valid_match": (0.0, 1.0),
            "energy": (-energy_range[1], -energy_range[0]),
            "e_hull": (-e_hull_range[1], -e_hull_range[0]),
        }
        # text -> (fraction passed, valid, structure, canonical, bond score)
        self._validity: dict[str, tuple] = {}
        self._physics: dict[str, _Physics] = {}  # canonical CIF -> energies
        self._match: dict[tuple[str, str], float] = {}  # (text, cell formula) -> match term
        self.stats = {"calls": 0, "texts": 0, "relaxed": 0, "physics_cache_hits": 0}

    # ----------------------------------------------------------------------------------------
    @property
    def needs_physics(self) -> bool:
        return any(t in self.weights for t in PHYSICS_TERMS)

    @property
    def lowest(self) -> float:
        """The lowest total any text can get (what an unparseable text gets)."""
        return sum(w * (self.bounds[t][0] if w > 0 else self.bounds[t][1]) for t, w in self.weights.items())

    @property
    def highest(self) -> float:
        return sum(w * (self.bounds[t][1] if w > 0 else self.bounds[t][0]) for t, w in self.weights.items())

    def describe(self) -> str:
        return ", ".join(f"{t}={w:g}" for t, w in self.weights.items())

    def __call__(self, texts: Sequence[str], prompts: Sequence[str | None] | None = None) -> list[float]:
        return [s.total for s in self.score(texts, prompts)]

    # ----------------------------------------------------------------------------------------
    def score(self, texts: Sequence[str], prompts: Sequence[str | None] | None = None) -> list[RewardScore]:
        """One :class:`RewardScore` per text, in order; never raises on bad texts. ``prompts``
        (one per text, or None) say what was asked for; the physics terms of all texts are
        computed in one batched relaxation."""
        texts = list(texts)
        prompts = [None] * len(texts) if prompts is None else list(prompts)
        if len(prompts) != len(texts):
            raise RewardError(f"{len(prompts)} prompts for {len(texts)} texts")
        self.stats["calls"] += 1
        self.stats["texts"] += len(texts)
        parsed = [self._parse(t) for t in texts]
        if self.needs_physics:
            self._compute_physics([p for p in parsed if p is not None])
        out = []
        for text, prompt, info in zip(texts, prompts, parsed):
            if info is None:
                out.append(self._lowest_score("not a CIF text (not a string)"))
                continue
            try:
                out.append(self._score_one(text, prompt, info))
            except Exception as err:  # noqa: BLE001 - a reward never raises on a bad text
                out.append(self._lowest_score(f"{type(err).__name__}: {err}"))
        return out

    def _lowest_score(self, error: str) -> RewardScore:
        terms = {t: self.bounds[t][0] if w > 0 else self.bounds[t][1] for t, w in self.weights.items()}
        return RewardScore(total=self.lowest, terms=terms, error=error)

    def _parse(self, text) -> tuple | None:
        """(fraction of checks passed, valid, structure, canonical CIF or None, soft bond score or
        None), cached by text."""
        if not isinstance(text, str):
            return None
        hit = self._validity.get(text)
        if hit is not None:
            return hit
        from hfmat.cif.validity import CHECKS, check_validity

        report = check_validity(text, mode="strict")
        passed = sum(c.passed for c in report.checks) / len(CHECKS)
        structure = report.structure
        canonical = None
        if structure is not None and self.needs_physics:
            canonical = _canonical(structure)
        info = (passed, report.valid, structure, canonical, report.bond_score)
        self._validity[text] = info
        return info

    def _compute_physics(self, parsed: list[tuple]) -> None:
        """Relax every structure whose canonical CIF has not been scored yet, in one batch."""
        todo: dict[str, object] = {}
        for _, _, structure, canonical, _ in parsed:
            if structure is None or canonical is None:
                continue
            if canonical in self._physics or canonical in todo:
                self.stats["physics_cache_hits"] += 1
                continue
            todo[canonical] = structure
        if not todo:
            return
        import torch

        from hfmat.physics import relax

        keys = list(todo)
        with torch.enable_grad():  # forces are gradients: also when called under no_grad (decoding)
            results = relax(
                [todo[k] for k in keys],
                self.potential,
                fmax=self.fmax,
                steps=self.steps,
                batch_size=self.batch_size,
                progress=False,
            )
        self.stats["relaxed"] += len(keys)
        for key, result in zip(keys, results):
            if not result.ok or result.energy_final is None or not math.isfinite(result.energy_final):
                self._physics[key] = _Physics(None, None, result.error or "no energy")
                continue
            e_hull, error = None, None
            if self.hull is not None:
                try:
                    e_hull = float(self.hull.e_above_hull(result.structure.composition, result.energy_final))
                except ValueError as err:
                    error = str(err)
            self._physics[key] = _Physics(float(result.energy_final), e_hull, error)

    def _score_one(self, text: str, prompt: str | None, info: tuple) -> RewardScore:
        passed, valid, structure, canonical, bond_score = info
        if structure is None:
            return self._lowest_score("the text does not parse")
        target = prompt_target(prompt if prompt is not None else text.split("\n", 1)[0])
        values: dict[str, float | None] = {"validity": passed, "bonds": bond_score}
        if "composition" in self.weights:
            values["composition"] = _composition_term(structure.composition, target.composition)
        if "spacegroup" in self.weights:
            values["spacegroup"] = _spacegroup_term(structure, target.spacegroup)
        if "match" in self.weights or ("valid_match" in self.weights and valid):
            values["match"] = self._match_term(text, structure, target.composition)
        values["valid_match"] = values.get("match", 0.0) if valid else 0.0  # no matcher run for it otherwise
        physics = self._physics.get(canonical) if canonical is not None else None
        energy = physics.energy_per_atom if physics else None
        e_hull = physics.e_above_hull if physics else None
        if "energy" in self.weights:
            values["energy"] = None if energy is None else -energy
        if "e_hull" in self.weights:
            values["e_hull"] = None if e_hull is None else -e_hull
        terms = {}
        for t, w in self.weights.items():
            lo, hi = self.bounds[t]
            v = values.get(t)
            terms[t] = (lo if w > 0 else hi) if v is None else min(max(float(v), lo), hi)
        total = sum(w * terms[t] for t, w in self.weights.items())
        return RewardScore(
            total=total,
            terms=terms,
            valid=valid,
            structure=structure,
            canonical=canonical,
            energy_per_atom=energy,
            e_above_hull=e_hull,
            error=physics.error if physics else None,
        )

    def _match_term(self, text: str, structure, wanted) -> float:
        """``1 - rms / stol`` of the closest reference of the prompted cell composition (the
        structure's own when the prompt names none), 0.0 without a match; cached by text."""
        key = (text, _cell_key(wanted if wanted is not None else structure.composition))
        if key not in self._match:
            from hfmat.evaluation.matching import CSP_MATCHER, match_pairs

            refs = self.references.get(key[1], [])
            answers = match_pairs([(structure, r) for r in refs], "rms", workers=1, progress=False)
            rms = [a for a, _ in answers if a is not None]
            self._match[key] = 1.0 - min(rms) / CSP_MATCHER["stol"] if rms else 0.0
        return self._match[key]


def _cell_key(composition) -> str:
    """A cell composition as a key: element amounts in a fixed order (``"O3 Sr1 Ti1"``)."""
    return " ".join(f"{el}{amount:g}" for el, amount in sorted(composition.get_el_amt_dict().items()))


def _canonical(structure) -> str | None:
    """The canonical CIF of ``structure`` (the physics cache key); None if it cannot be written."""
    from hfmat.cif.writer import structure_to_cif

    try:
        return structure_to_cif(structure)
    except Exception:  # noqa: BLE001 - an unwritable structure is not relaxed either
        return None


def _composition_term(found, wanted) -> float:
    if wanted is None:
        return 1.0
    if found.almost_equals(wanted):
        return 1.0
    if found.reduced_composition.almost_equals(wanted.reduced_composition):
        return 0.5
    return 0.0


def _spacegroup_term(structure, wanted: int | None) -> float:
    if wanted is None:
        return 1.0
    from hfmat.cif.validity import space_group

    return 1.0 if space_group(structure, wanted, mode="strict").passed else 0.0
