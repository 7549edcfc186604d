"""What kind of Hub repository a folder is, and whether it is complete.

Six kinds of artifact, each a folder that is uploaded as it is:

- ``pipeline``: a diffusers pipeline (model_index.json, one folder per component, README.md).
- ``language-model``: a transformers causal LM (config.json, generation_config.json,
  model.safetensors, tokenizer.json, tokenizer_config.json, README.md).
- ``tokenizer``: tokenizer.json, tokenizer_config.json, README.md.
- ``text-encoder``: a transformers encoder such as a BertModel with its tokenizer (config.json,
  model.safetensors, tokenizer.json, tokenizer_config.json, README.md; no generation_config.json).
- ``crystal-clip``: Crystal CLIP (hfmat.text): clip_config.json, text_encoder/ (config.json,
  model.safetensors), tokenizer/ (tokenizer.json, tokenizer_config.json), crystal_encoder/
  (config.json, diffusion_pytorch_model.safetensors), README.md.
- ``dataset``: data files (parquet) listed under ``configs`` in README.md's YAML.

:func:`check_folder` detects the kind and raises :class:`IncompleteArtifactError` naming every
missing file, and :class:`CardError` when the card does not render or lacks metadata.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

from hfmat.hub.cards import check_card_text
from hfmat.hub.errors import CardError, IncompleteArtifactError
from hfmat.hub.weights import check_weights

KINDS = ("pipeline", "language-model", "tokenizer", "dataset", "text-encoder", "crystal-clip")

#: Files never uploaded (editor and cache litter).
IGNORED = [".*", "*/.*", "__pycache__/*", "*/__pycache__/*", "*.pyc"]

#: Pickled weights: refused (hfmat ships safetensors only).
PICKLES = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt"]

#: Repo type on the Hub for each kind.
REPO_TYPES = {
    "pipeline": "model",
    "language-model": "model",
    "tokenizer": "model",
    "dataset": "dataset",
    "text-encoder": "model",
    "crystal-clip": "model",
}

#: Card metadata every kind must carry.
REQUIRED_METADATA = {
    "pipeline": ["license", "library_name", "tags"],
    "language-model": ["license", "library_name", "tags", "pipeline_tag"],
    "tokenizer": ["license", "library_name", "tags"],
    "dataset": ["license", "configs"],
    "text-encoder": ["license", "library_name", "tags", "pipeline_tag"],
    "crystal-clip": ["license", "library_name", "tags"],
}

LM_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "README.md"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "README.md"]
TEXT_ENCODER_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "README.md"]
#: Crystal CLIP's folder (hfmat.text.clip): its config file, the format it names, and its parts.
CLIP_CONFIG = "clip_config.json"
CLIP_FORMAT = "hfmat-crystal-clip"
CLIP_FILES = [
    CLIP_CONFIG,
    "README.md",
    "text_encoder/config.json",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "crystal_encoder/config.json",
]
DATA_SUFFIXES = (".parquet", ".arrow", ".csv", ".jsonl", ".json")


@dataclass
class Artifact:
    """A checked folder: its kind, the Hub repo type and the files that would be uploaded."""

    folder: Path
    kind: str
    files: list[str] = field(default_factory=list)

    @property
    def repo_type(self) -> str:
        return REPO_TYPES[self.kind]


def list_files(folder: str | Path) -> list[str]:
    """Files under ``folder`` (POSIX paths relative to it, sorted), without :data:`IGNORED` litter."""
    folder = Path(folder)
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if any(fnmatch.fnmatch(rel, pat) for pat in IGNORED):
            continue
        out.append(rel)
    return out


def _has_parquet(files: list[str]) -> bool:
    return any(f.endswith(".parquet") for f in files)


def detect_kind(folder: str | Path) -> str:
    """Guess the kind of artifact in ``folder`` from the files it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = list_files(folder)
    names = set(files)
    if "model_index.json" in names:
        return "pipeline"
    if CLIP_CONFIG in names:
        return "crystal-clip"
    if "config.json" in names and "generation_config.json" not in names and _is_encoder(folder):
        return "text-encoder"
    if names & {"config.json", "generation_config.json"} or any(
        f.startswith("model") and f.endswith(".safetensors") for f in names
    ):
        return "language-model"
    if _has_parquet(files) or _card_has_configs(folder):
        return "dataset"
    if names & {"tokenizer.json", "tokenizer_config.json"}:
        return "tokenizer"
    raise IncompleteArtifactError(
        f"cannot tell what {folder} holds: expected model_index.json (diffusion pipeline), "
        f"{CLIP_CONFIG} (Crystal CLIP), config.json (language model or text encoder), tokenizer.json "
        "(tokenizer) or parquet files (dataset)",
        missing=[f"model_index.json | {CLIP_CONFIG} | config.json | tokenizer.json | *.parquet"],
    )


def _is_encoder(folder: Path) -> bool:
    """config.json names an encoder (``BertModel``, ``RobertaModel``: an architecture ending in
    ``Model`` that is not an ``...LMHeadModel``), not a causal language model."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    architectures = config.get("architectures") if isinstance(config, dict) else None
    return bool(architectures) and all(
        isinstance(a, str) and a.endswith("Model") and not a.endswith("LMHeadModel") for a in architectures
    )


def _card_has_configs(folder: Path) -> bool:
    readme = folder / "README.md"
    if not readme.is_file():
        return False
    from huggingface_hub.repocard import RepoCard

    try:
        return bool(RepoCard.load(readme).data.to_dict().get("configs"))
    except (ValueError, OSError):
        return False


def _read_json(folder: Path, name: str, problems: list[str]) -> dict:
    path = folder / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as err:
        problems.append(f"{name} is not valid JSON ({err})")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{name} is not a JSON object")
        return {}
    return data


def _weights_missing(folder: Path, prefix: str, stem: str) -> list[str]:
    """``stem`` is ``model`` or ``diffusion_pytorch_model``: single file or sharded with an index."""
    if (folder / f"{stem}.safetensors").is_file():
        return []
    index = folder / f"{stem}.safetensors.index.json"
    if not index.is_file():
        return [f"{prefix}{stem}.safetensors"]
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (ValueError, KeyError, TypeError, AttributeError):
        return [f"{prefix}{stem}.safetensors.index.json (no weight_map)"]
    return [f"{prefix}{s}" for s in sorted(shards) if not (folder / s).is_file()]


def _tokenizer_problems(folder: Path, prefix: str, problems: list[str]) -> None:
    config = _read_json(folder, "tokenizer_config.json", problems)
    if (folder / "tokenizer_config.json").is_file() and not config.get("tokenizer_class"):
        problems.append(
            f"{prefix}tokenizer_config.json has no tokenizer_class (next to a GPT-2 config.json, "
            "AutoTokenizer would then load a GPT2Tokenizer and corrupt the text)"
        )


def _missing_pipeline(folder: Path, problems: list[str]) -> list[str]:
    missing = [f for f in ["model_index.json", "README.md"] if not (folder / f).is_file()]
    index = _read_json(folder, "model_index.json", problems)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        sub = folder / name
        if not sub.is_dir():
            missing.append(f"{name}/ (component {spec[0]}.{spec[1]})")
            continue
        configs = {p.name for p in sub.glob("*.json")}
        if "scheduler_config.json" in configs:
            continue
        if "tokenizer_config.json" in configs:
            missing += [f"{name}/{f}" for f in ["tokenizer.json"] if not (sub / f).is_file()]
            _tokenizer_problems(sub, f"{name}/", problems)
            continue
        if "config.json" not in configs:
            missing.append(f"{name}/config.json")
            continue
        config = _read_json(sub, "config.json", problems)
        stem = "model" if "transformers_version" in config else "diffusion_pytorch_model"
        missing += _weights_missing(sub, f"{name}/", stem)
    return missing


def _missing_clip(folder: Path, problems: list[str]) -> list[str]:
    missing = [f for f in CLIP_FILES if not (folder / f).is_file()]
    missing += _weights_missing(folder / "text_encoder", "text_encoder/", "model")
    missing += _weights_missing(folder / "crystal_encoder", "crystal_encoder/", "diffusion_pytorch_model")
    config = _read_json(folder, CLIP_CONFIG, problems)
    if (folder / CLIP_CONFIG).is_file() and config:
        if config.get("format") != CLIP_FORMAT:
            problems.append(f"{CLIP_CONFIG} has format {config.get('format')!r}, expected {CLIP_FORMAT!r}")
        absent = [k for k in ("logit_scale", "text_columns") if k not in config]
        if absent:
            problems.append(f"{CLIP_CONFIG} lacks {', '.join(absent)}")
    _read_json(folder / "text_encoder", "config.json", problems)
    _read_json(folder / "crystal_encoder", "config.json", problems)
    _tokenizer_problems(folder / "tokenizer", "tokenizer/", problems)
    return missing


def _missing_dataset(folder: Path, files: list[str], problems: list[str]) -> list[str]:
    if not (folder / "README.md").is_file():
        return ["README.md"]
    from huggingface_hub import DatasetCard

    try:
        configs = DatasetCard.load(folder / "README.md").data.to_dict().get("configs") or []
    except ValueError:
        return []  # reported by the card check
    missing = []
    for config in configs:
        data_files = config.get("data_files", []) if isinstance(config, dict) else []
        if isinstance(data_files, (str, dict)):
            data_files = [data_files]
        for entry in data_files:
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
                if not any(fnmatch.fnmatch(f, pattern) for f in files):
                    missing.append(f"{pattern} (data_files of config {config.get('config_name', '?')!r})")
    if not any(f.endswith(DATA_SUFFIXES) and f != "README.md" for f in files):
        missing.append("*.parquet (no data files)")
    return missing


def check_card(folder: str | Path, kind: str) -> None:
    """README.md must parse as a card, carry :data:`REQUIRED_METADATA` and hold no template markup."""
    from huggingface_hub import DatasetCard, ModelCard

    readme = Path(folder) / "README.md"
    text = readme.read_text(encoding="utf-8")
    check_card_text(text, source=str(readme))
    try:
        card = (DatasetCard if kind == "dataset" else ModelCard).load(readme)
    except ValueError as err:
        raise CardError(f"{readme} does not parse as a Hub card: {err}") from err
    data = card.data.to_dict()
    absent = [key for key in REQUIRED_METADATA[kind] if not data.get(key)]
    if absent:
        raise CardError(f"{readme} lacks YAML metadata the Hub needs: {', '.join(absent)}")


def check_folder(folder: str | Path, kind: str | None = None) -> Artifact:
    """Check ``folder`` is a complete Hub repository of ``kind`` (detected when None)."""
    folder = Path(folder)
    kind = kind or detect_kind(folder)
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {KINDS}")
    files = list_files(folder)
    problems: list[str] = []
    if kind == "pipeline":
        missing = _missing_pipeline(folder, problems)
    elif kind == "language-model":
        missing = [f for f in LM_FILES if not (folder / f).is_file()] + _weights_missing(folder, "", "model")
        _read_json(folder, "config.json", problems)
        _read_json(folder, "generation_config.json", problems)
        _tokenizer_problems(folder, "", problems)
    elif kind == "tokenizer":
        missing = [f for f in TOKENIZER_FILES if not (folder / f).is_file()]
        _tokenizer_problems(folder, "", problems)
    elif kind == "text-encoder":
        missing = [f for f in TEXT_ENCODER_FILES if not (folder / f).is_file()]
        missing += _weights_missing(folder, "", "model")
        _read_json(folder, "config.json", problems)
        _tokenizer_problems(folder, "", problems)
    elif kind == "crystal-clip":
        missing = _missing_clip(folder, problems)
    else:
        missing = _missing_dataset(folder, files, problems)
    pickles = [f for f in files if any(fnmatch.fnmatch(f, p) for p in PICKLES)]
    if pickles:
        problems.append(f"pickled files are not shipped (save weights as safetensors): {', '.join(pickles)}")
    if missing or problems:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        parts += problems
        raise IncompleteArtifactError(
            f"{folder} is not a complete {kind} repository: {'; '.join(parts)}", missing
        )
    check_weights(folder)
    check_card(folder, kind)
    return Artifact(folder=folder, kind=kind, files=files)
