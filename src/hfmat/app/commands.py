"""The ``hfmat`` command that reproduces what the app sampled: the same model, prompt, sample
count, seed and steps, with the batch sizes the CLI uses by default (which the app samples with too,
since the random stream is shared by the crystals of a batch)."""

from __future__ import annotations

import re
import shlex

#: ``hfmat generate``'s default --batch-size: the app samples with it so that the command reproduces.
LM_BATCH_SIZE = 32


def _quote(text) -> str:
    return shlex.quote(str(text))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "run"


def generate_command(
    model: str, composition: str, spacegroup: str | None, num_samples: int, seed: int, device: str = "cpu"
) -> str:
    """``hfmat generate`` for a structure prediction with the language model ``model``."""
    parts = ["hfmat generate", "--model", _quote(model), "--composition", _quote(composition)]
    if spacegroup:
        parts += ["--spacegroup", _quote(spacegroup)]
    parts += ["-n", str(num_samples), "--seed", str(seed)]
    if device != "cpu":
        parts += ["--device", _quote(device)]
    parts += ["--out", _quote(f"lm-{_slug(composition)}")]
    return " ".join(parts)


def diffuse_command(
    model: str,
    *,
    composition: str | None = None,
    num_atoms: int | None = None,
    num_samples: int,
    seed: int,
    steps: int | None = None,
    conditions: dict | None = None,
    prompt: str | None = None,
    guidance_scale: float | None = None,
    device: str = "cpu",
) -> str:
    """``hfmat diffuse``: structure prediction for ``composition``, or de novo (``num_atoms`` atoms
    per cell; None: drawn from the training distribution)."""
    parts = ["hfmat diffuse", "--model", _quote(model)]
    if composition is not None:
        parts += ["--composition", _quote(composition)]
    elif num_atoms is not None:
        parts += ["--num-atoms", str(num_atoms)]
    parts += ["-n", str(num_samples)]
    if steps is not None:
        parts += ["--steps", str(steps)]
    for name, value in (conditions or {}).items():
        parts += ["--condition", _quote(f"{name}={value}")]
    if prompt is not None:
        parts += ["--prompt", _quote(prompt)]
    if guidance_scale is not None:
        parts += ["--guidance-scale", f"{guidance_scale:g}"]
    parts += ["--seed", str(seed)]
    if device != "cpu":
        parts += ["--device", _quote(device)]
    out = f"diffusion-{_slug(composition)}" if composition is not None else "denovo"
    parts += ["--out", _quote(out)]
    return " ".join(parts)
