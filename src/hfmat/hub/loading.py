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

from hfmat.hub.errors import HubError, IncompatibleArtifactError
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


class BrokenArtifactError(HubError):
    """A folder's config file is missing or unreadable, or a component will not build from it; the
    message names the file."""


def _json_file(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BrokenArtifactError(
            f"{path} is not a readable JSON file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(value, dict):
        raise BrokenArtifactError(f"{path} holds a JSON {type(value).__name__}, expected an object")
    return value


def _components(folder: Path) -> dict[str, tuple[str, str]]:
    """``name -> (module, class)`` of a pipeline folder's present components (model_index.json)."""
    index = _json_file(folder / "model_index.json")
    return {
        name: (spec[0], spec[1])
        for name, spec in sorted(index.items())
        if not name.startswith("_") and isinstance(spec, list) and len(spec) == 2 and spec[0] is not None
    }


def check_configs(folder: str | Path) -> None:
    """BrokenArtifactError naming the file, before any loader runs: a pipeline component folder (or
    its config) that model_index.json lists but the folder lacks, or a config that is not JSON."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if (folder / "model_index.json").is_file():
        for name in _components(folder):
            sub = folder / name
            configs = [sub / "scheduler_config.json", sub / "config.json", sub / "tokenizer_config.json"]
            if not sub.is_dir():
                raise BrokenArtifactError(f"{sub} is missing: model_index.json lists a component {name!r}")
            present = [c for c in configs if c.is_file()]
            if not present:
                raise BrokenArtifactError(
                    f"{sub} has no scheduler_config.json, config.json or tokenizer_config.json"
                )
            for config in present:
                _json_file(config)
    elif (folder / "config.json").is_file():
        _json_file(folder / "config.json")


def _failing_component(folder: Path) -> str | None:
    """After a pipeline failed to load: the first component that will not build alone, with its
    config file and the error (None when each builds)."""
    for name, (module, cls) in _components(folder).items():
        try:
            component = getattr(importlib.import_module(module), cls)
            component.from_pretrained(folder, subfolder=name)
        except Exception as err:  # noqa: BLE001 - reported with the file
            config = next(
                (
                    c
                    for c in ("scheduler_config.json", "config.json", "tokenizer_config.json")
                    if (folder / name / c).is_file()
                ),
                "?",
            )
            return f"{folder / name / config} ({cls}: {type(err).__name__}: {err})"
    return None


def load(loader: Any, name_or_path: str | os.PathLike, *, revision: str | None = None, **kwargs: Any):
    """``loader.from_pretrained(local_folder, **kwargs)`` for a repo id or a folder.

    Errors: :class:`NotCachedError` (repo id neither cached nor reachable),
    :class:`CorruptWeightsError` (a truncated ``*.safetensors``, named), and
    :class:`IncompatibleArtifactError` when loading fails and the folder was saved by other
    versions of hfmat / transformers / diffusers than the installed ones, or names a pipeline
    component class that no longer exists (it says which); :class:`BrokenArtifactError` naming the
    file for a config that is not JSON, a component folder that is missing, or any other failure
    (a pipeline's is traced to the component that will not build).
    """
    folder = resolve(name_or_path, revision=revision)
    check_weights(folder)
    check_configs(folder)
    loader_name = getattr(loader, "__name__", type(loader).__name__)
    try:
        return loader.from_pretrained(folder, **kwargs)
    except Exception as err:
        message = explain_failure(folder, str(name_or_path), err, loader_name)
        if message is not None:
            raise IncompatibleArtifactError(message) from err
        culprit = _failing_component(Path(folder)) if (Path(folder) / "model_index.json").is_file() else None
        where = f": {culprit}" if culprit else f" ({type(err).__name__}: {_one_line(err)})"
        raise BrokenArtifactError(f"{loader_name} could not load {name_or_path}{where}") from err


def _one_line(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return (text[:limit] + " ...") if len(text) > limit else text or type(err).__name__
