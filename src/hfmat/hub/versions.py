"""Which library versions wrote a saved folder, and which are installed now.

Transformers records ``transformers_version`` in config.json and generation_config.json, diffusers
records ``_diffusers_version`` in model_index.json and each component config, and hfmat's cards
record an ``hfmat`` block (hfmat and library versions) in their YAML metadata. When a folder fails to
load, :func:`version_mismatches` says which of these differ from the installed versions.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

#: Libraries whose versions decide whether a saved artifact loads.
LIBRARIES = ("hfmat", "transformers", "diffusers", "tokenizers", "datasets", "huggingface_hub", "torch")


def installed_versions() -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES` (a library that is not installed is left out)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_versions(folder: str | Path) -> dict[str, str]:
    """Library versions recorded in a saved folder (configs and the card's ``hfmat`` metadata)."""
    folder = Path(folder)
    found: dict[str, str] = {}
    for config in sorted(folder.glob("*.json")) + sorted(folder.glob("*/*config*.json")):
        data = _read_json(config)
        if isinstance(data.get("transformers_version"), str):
            found.setdefault("transformers", data["transformers_version"])
        if isinstance(data.get("_diffusers_version"), str):
            found.setdefault("diffusers", data["_diffusers_version"])
    readme = folder / "README.md"
    if readme.is_file():
        from huggingface_hub.repocard import RepoCard

        try:
            block = RepoCard.load(readme).data.to_dict().get("hfmat")
        except (ValueError, OSError):
            block = None
        if isinstance(block, dict):
            for name, version in block.items():
                key = "hfmat" if name == "version" else name
                if key in LIBRARIES and isinstance(version, str):
                    found.setdefault(key, version)
    return found


def version_mismatches(folder: str | Path) -> dict[str, tuple[str, str]]:
    """``{library: (saved, installed)}`` for each recorded version that differs from the installed one."""
    installed = installed_versions()
    return {
        name: (saved, installed[name])
        for name, saved in saved_versions(folder).items()
        if name in installed and saved != installed[name]
    }
