"""Checks of what a user passes to the pipeline, done before any sampling starts."""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Composition

from hfmat.chemistry import atomic_number
from hfmat.composition import CompositionInputError, read_composition


class PipelineInputError(ValueError):
    """Bad input to :class:`hfmat.diffusion.CrystalDiffusionPipeline`; the message says which and why."""


def composition_atoms(
    composition: str | Composition, max_atoms: int, where: str = "composition"
) -> list[int]:
    """Atomic numbers of every atom of the cell a composition describes, in the composition's
    order (:func:`hfmat.composition.read_composition`: ``"SrTiO3"`` is 5 atoms, Sr, Ti, O, O, O)."""
    try:
        comp = read_composition(composition)
    except CompositionInputError as err:
        raise PipelineInputError(f"{where}: {err}") from None
    atoms = [atomic_number(species.symbol) for species, amount in comp.items() for _ in range(round(amount))]
    check_num_atoms(len(atoms), max_atoms, f"{where} {composition!r}")
    return atoms


def check_num_atoms(n, max_atoms: int, where: str = "num_atoms") -> int:
    if isinstance(n, bool) or int(n) != n:
        raise PipelineInputError(f"{where}: the number of atoms must be an integer, got {n!r}")
    if int(n) < 1:
        raise PipelineInputError(f"{where}: a crystal needs at least one atom, got {int(n)}")
    if int(n) > max_atoms:
        raise PipelineInputError(
            f"{where}: {int(n)} atoms is more than this model supports (max_atoms={max_atoms})"
        )
    return int(n)


def as_list(value) -> list:
    if isinstance(value, (str, Composition, int)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def read_conditions(items: Sequence[str], where: str = "--condition ") -> dict[str, float | int] | None:
    """``["heat_ref=-0.5", "crystal_system=3"]`` -> ``{"heat_ref": -0.5, "crystal_system": 3}``
    (None when there are none): how ``hfmat diffuse --condition`` and the web app read property
    targets. A ValueError starting with ``where`` names a malformed item."""
    if not items:
        return None
    out: dict[str, float | int] = {}
    for item in items:
        name, sep, text = (s.strip() for s in item.partition("="))
        if not sep or not name or not text:
            raise ValueError(f"{where}{item!r}: write NAME=VALUE, e.g. heat_ref=-0.5")
        try:
            out[name] = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ValueError(f"{where}{item!r}: the value must be a number") from None
    return out


def check_condition_values(conditions, specs: dict[str, dict]) -> dict[str, float | int]:
    """``conditions`` (name -> one value) checked against a denoiser's declared conditions
    (``CrystalDenoiser.condition_specs``): known names, a real number for a scalar, a class index
    in ``0..num_classes-1`` for a categorical. Warns (UserWarning) for a scalar more than 4 training
    standard deviations from the training mean: the model has seen nothing like it."""
    import math
    import numbers
    import warnings

    if not isinstance(conditions, dict):
        raise PipelineInputError(
            f"conditions must be a dict of condition name -> value, got {type(conditions).__name__}"
        )
    if not specs:
        raise PipelineInputError(
            f"this pipeline's denoiser has no conditions (it was trained without any), so it cannot be "
            f"conditioned on {sorted(conditions)}"
        )
    out: dict[str, float | int] = {}
    for name, value in conditions.items():
        if name not in specs:
            raise PipelineInputError(
                f"unknown condition {name!r}; this model's conditions: {', '.join(specs)}"
            )
        spec = specs[name]
        if spec["kind"] == "text":
            raise PipelineInputError(
                f"condition {name!r} is the text condition: pass the description as prompt=... "
                "(hfmat diffuse --prompt), not in conditions"
            )
        if spec["kind"] == "scalar":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise PipelineInputError(
                    f"condition {name!r} is a scalar: give a finite number, got {value!r}"
                )
            z = (float(value) - spec["mean"]) / spec["std"]
            if abs(z) > 4:
                warnings.warn(
                    f"condition {name}={value} is {abs(z):.1f} standard deviations from the training mean "
                    f"({spec['mean']:.4g} +- {spec['std']:.4g}): far outside what the model was trained on",
                    UserWarning,
                    stacklevel=3,
                )
            out[name] = float(value)
        else:
            n = spec["num_classes"]
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < n:
                raise PipelineInputError(
                    f"condition {name!r} is categorical: give a class index, an integer 0..{n - 1}, got {value!r}"
                )
            out[name] = int(value)
    return out
