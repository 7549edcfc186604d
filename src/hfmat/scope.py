"""What a checkpoint was trained on, read from what it records, and why a prompt is outside it
(``hfmat generate``/``diffuse`` print it as a warning; the web app shows it).

Sources, in a model folder: ``training_summary.json`` (``config.dataset``, and ``elements`` /
``num_atoms`` where a training run recorded them), else the model card's ``model-index`` dataset;
a diffusion pipeline's ``denoiser/config.json`` ``num_atoms_distribution`` (the atom counts it saw);
for a benchmark dataset, its description, atom-count range and elements in ``hfmat.data.catalog``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainingScope:
    dataset: str
    description: str = ""
    atom_counts: tuple[int, ...] = ()  # the cell sizes seen (empty: unknown)
    max_atoms: int | None = None
    min_atoms: int | None = None
    elements: tuple[str, ...] = ()  # empty: unknown

    def describe(self) -> str:
        what = self.dataset + (f": {self.description.rstrip('.')}" if self.description else "")
        if self.elements:
            what += f"; its {len(self.elements)} elements: {' '.join(self.elements)}"
        return what


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _card_dataset(folder: Path) -> str | None:
    try:
        from huggingface_hub import ModelCard

        data = ModelCard.load(folder / "README.md").data.to_dict()
        return data["model-index"][0]["results"][0]["dataset"]["type"]
    except Exception:  # noqa: BLE001 - a card without a model-index records no dataset
        return None


def training_scope(folder: str | Path) -> TrainingScope | None:
    """What the model in ``folder`` was trained on, or None when it records nothing."""
    from hfmat.data.catalog import BENCHMARKS

    folder = Path(folder)
    summary = _read_json(folder / "training_summary.json")
    config = summary.get("config") if isinstance(summary.get("config"), dict) else {}
    dataset = config.get("dataset") or _card_dataset(folder)
    if not isinstance(dataset, str) or not dataset:
        return None
    bench = BENCHMARKS.get(dataset)
    recorded = summary.get("data") if isinstance(summary.get("data"), dict) else {}
    elements = tuple(recorded.get("elements") or (bench.elements if bench else ()))
    dist = _read_json(folder / "denoiser" / "config.json").get("num_atoms_distribution")
    counts = tuple(n for n, p in enumerate(dist) if p > 0) if isinstance(dist, list) else ()
    return TrainingScope(
        dataset=dataset,
        description=bench.description if bench else "",
        atom_counts=tuple(recorded.get("num_atoms") or counts),
        max_atoms=bench.max_atoms if bench else None,
        min_atoms=bench.min_atoms if bench else None,
        elements=elements,
    )


def out_of_scope(scope: TrainingScope, composition) -> str | None:
    """Why ``composition`` (a cell composition) is outside ``scope``, or None when it is inside."""
    from hfmat.composition import CompositionInputError, read_composition

    try:
        comp = read_composition(composition)
    except CompositionInputError:  # the model's own input check reports it
        return None
    n = int(round(comp.num_atoms))
    reasons = []
    unseen = [str(el) for el in comp.elements if scope.elements and str(el) not in scope.elements]
    if unseen:
        reasons.append(
            f"{', '.join(unseen)} never occur{'s' if len(unseen) == 1 else ''} in its training data"
        )
    if scope.atom_counts and n not in scope.atom_counts:
        seen = ", ".join(map(str, scope.atom_counts))
        reasons.append(f"its training cells have {seen} atoms, not {n}")
    elif not scope.atom_counts and scope.max_atoms and not (scope.min_atoms or 1) <= n <= scope.max_atoms:
        low = scope.min_atoms or 1
        seen = str(low) if low == scope.max_atoms else f"{low}-{scope.max_atoms}"
        reasons.append(f"its training cells have {seen} atoms, not {n}")
    if not reasons:
        return None
    formula = composition if isinstance(composition, str) else comp.formula.replace(" ", "")
    return (
        f"{formula} ({n} atoms in the cell) is outside what the model was trained on: "
        f"{'; '.join(reasons)}. Trained on {scope.describe()}. Expect samples of low quality."
    )
