"""The models an app serves: each name (a shipped model's name, a folder or a Hub repo id) resolved
once at start-up and told apart by what its folder holds (``hfmat.hub.detect_kind``): a CIF language
model or a crystal diffusion pipeline. Weights load on first use and stay loaded."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hfmat import shipped

LM = "language model"
DIFFUSION = "diffusion"


@dataclass(frozen=True)
class ModelEntry:
    """One model as the app offers it. ``de_novo``: a pipeline that samples atom types (de novo
    generation); ``conditions``: the conditions its denoiser declares (docs/guidance.md): property
    targets, and a text prompt for a text-conditioned pipeline (docs/text_guidance.md)."""

    name: str
    folder: Path
    kind: str  # LM or DIFFUSION
    de_novo: bool = False
    max_atoms: int | None = None
    conditions: tuple[dict, ...] = ()

    @property
    def properties(self) -> tuple[dict, ...]:
        """The property conditions (scalar and categorical): the targets a user types as NAME=VALUE."""
        return tuple(c for c in self.conditions if c.get("kind") != "text")

    @property
    def takes_prompt(self) -> bool:
        """Whether the pipeline samples from a text prompt (a text condition and its text tower)."""
        return any(c.get("kind") == "text" for c in self.conditions)

    @property
    def condition_names(self) -> list[str]:
        return [c["name"] for c in self.properties]

    def describe_conditions(self) -> str:
        """``heat_ref (scalar, training mean 1.246 ± 0.642); spacegroup (class 0..230)``."""
        parts = []
        for c in self.properties:
            if c.get("kind") == "scalar":
                parts.append(f"{c['name']} (scalar, training mean {c['mean']:.4g} ± {c['std']:.4g})")
            else:
                parts.append(f"{c['name']} (class 0..{int(c['num_classes']) - 1})")
        return "; ".join(parts)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe(name: str) -> ModelEntry:
    """Resolve ``name`` and read what kind of model it is (no weights are loaded). Errors:
    FileNotFoundError / ``hfmat.hub`` errors (ValueError) naming the model."""
    from hfmat.hub import resolve
    from hfmat.hub.layout import detect_kind

    folder = Path(resolve(name))
    kind = detect_kind(folder)
    if kind == "language-model":
        return ModelEntry(name, folder, LM)
    if kind == "pipeline":
        config = _json(folder / "denoiser" / "config.json")
        return ModelEntry(
            name,
            folder,
            DIFFUSION,
            de_novo=bool(config.get("predict_atom_types", False)),
            max_atoms=config.get("max_atoms"),
            conditions=tuple(config.get("conditions") or ()),
        )
    raise ValueError(f"{name}: holds a {kind}, not a language model or a diffusion pipeline")


@dataclass
class Models:
    """The app's models by name, in the order given; weights load on first use (one at a time)."""

    entries: dict[str, ModelEntry]
    device: str = "cpu"
    _loaded: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_names(cls, names: list[str] | None = None, device: str = "cpu") -> Models:
        """The models ``names`` (default: the shipped generators, :data:`hfmat.shipped.NAMES`, and
        the text-conditioned pipelines, :data:`hfmat.shipped.TEXT_PIPELINES`)."""
        names = list(names or shipped.NAMES + shipped.TEXT_PIPELINES)
        return cls({name: describe(name) for name in dict.fromkeys(names)}, device=device)

    def names(self, kind: str, de_novo: bool | None = None) -> list[str]:
        return [
            e.name
            for e in self.entries.values()
            if e.kind == kind and (de_novo is None or e.de_novo == de_novo)
        ]

    def entry(self, name: str) -> ModelEntry:
        if name not in self.entries:
            raise ValueError(f"no model {name!r} in this app; it serves {', '.join(self.entries)}")
        return self.entries[name]

    def language_model(self, name: str):
        """(model, tokenizer) of the language model ``name``."""
        entry = self.entry(name)
        if entry.kind != LM:
            raise ValueError(f"{name} is a {entry.kind} model, not a language model")
        with self._lock:
            if name not in self._loaded:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                from hfmat.hub import load

                model = load(AutoModelForCausalLM, entry.folder).to(self.device)
                self._loaded[name] = (model, load(AutoTokenizer, entry.folder))
            return self._loaded[name]

    def pipeline(self, name: str):
        """The ``CrystalDiffusionPipeline`` ``name``."""
        entry = self.entry(name)
        if entry.kind != DIFFUSION:
            raise ValueError(f"{name} is a {entry.kind}, not a diffusion pipeline")
        with self._lock:
            if name not in self._loaded:
                from hfmat.diffusion import CrystalDiffusionPipeline
                from hfmat.hub import load

                pipe = load(CrystalDiffusionPipeline, entry.folder).to(self.device)
                pipe.set_progress_bar_config(desc=f"{name}: denoising")
                self._loaded[name] = pipe
            return self._loaded[name]
