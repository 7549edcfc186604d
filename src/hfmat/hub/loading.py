"""``load(loader, name_or_path)``: ``from_pretrained`` through :func:`resolve`, with the weights
checked first and a load failure explained by what saved the folder.

    from transformers import AutoModelForCausalLM
    from hfmat.hub import load
    model = load(AutoModelForCausalLM, "hfmat/cif-gpt2-perov5")
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from hfmat.hub.errors import IncompatibleArtifactError
from hfmat.hub.resolve import resolve
from hfmat.hub.versions import installed_versions, saved_versions, version_mismatches
from hfmat.hub.weights import check_weights


def missing_classes(folder: str | Path) -> list[str]:
    """Components of ``model_index.json`` whose ``[module, class]`` this installation cannot import
    (a class that moved or was renamed since the folder was saved)."""
    path = Path(folder) / "model_index.json"
    if not path.is_file():
        return []
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return []
    out = []
    for name, spec in sorted(index.items()):
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        module, cls = spec
        try:
            found = hasattr(importlib.import_module(module), cls)
        except ImportError:
            found = False
        if not found:
            out.append(f"{name} = {module}.{cls}")
    return out


def explain_failure(folder: str | Path, name: str, err: Exception, loader_name: str) -> str | None:
    """Why ``folder`` may not load here, from its recorded versions and class paths; None if nothing
    points at a version or layout difference."""
    mismatches = version_mismatches(folder)
    moved = missing_classes(folder)
    if not mismatches and not moved:
        return None
    parts = [f"{loader_name} could not load {name} ({type(err).__name__}: {err})."]
    if moved:
        parts.append(f"model_index.json names classes this installation does not have: {'; '.join(moved)}.")
    if mismatches:
        differ = ", ".join(
            f"{lib} {saved} (installed: {now})" for lib, (saved, now) in sorted(mismatches.items())
        )
        pins = " ".join(f"'{lib}=={saved}'" for lib, (saved, _) in sorted(mismatches.items()))
        parts.append(
            f"It was saved by {differ}: load it with those versions (pip install {pins}) and re-save it "
            "with the installed ones."
        )
    else:
        saved = saved_versions(folder)
        now = installed_versions()
        parts.append(
            "It was saved by "
            + (", ".join(f"{k} {v}" for k, v in sorted(saved.items())) or "unrecorded versions")
            + f"; installed: hfmat {now.get('hfmat', '?')}."
        )
    return " ".join(parts)


def load(loader: Any, name_or_path: str | os.PathLike, *, revision: str | None = None, **kwargs: Any):
    """``loader.from_pretrained(local_folder, **kwargs)`` for a repo id or a folder.

    Errors: :class:`NotCachedError` (repo id neither cached nor reachable),
    :class:`CorruptWeightsError` (a truncated ``*.safetensors``, named), and
    :class:`IncompatibleArtifactError` when loading fails and the folder was saved by other
    versions of hfmat / transformers / diffusers than the installed ones, or names a pipeline
    component class that no longer exists (it says which).
    """
    folder = resolve(name_or_path, revision=revision)
    check_weights(folder)
    try:
        return loader.from_pretrained(folder, **kwargs)
    except Exception as err:
        message = explain_failure(
            folder, str(name_or_path), err, getattr(loader, "__name__", type(loader).__name__)
        )
        if message is None:
            raise
        raise IncompatibleArtifactError(message) from err
