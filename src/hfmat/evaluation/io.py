"""Reading predictions and references for ``hfmat evaluate``.

Predictions come in one of three forms, each giving CIF texts and (for CSP) the id of the target
each text is a candidate for:

- the folder of an ``hfmat generate`` / ``hfmat diffuse`` run: its ``predictions.jsonl`` is read;
- a folder of ``.cif`` files named ``<material_id>__<i>.cif`` (candidate ``i`` of that target, from
  0) or ``<material_id>.cif`` (a single candidate); for generation, any names;
- a JSON Lines file, one object per candidate: ``{"material_id": "...", "cif": "..."}``, several
  lines per id for k > 1 in sample order (an optional integer ``"sample"`` field sets the order);
  ``material_id`` may be left out for generation;
- a dataset saved with ``datasets`` ``save_to_disk`` holding a ``cif`` column and, for CSP, a
  ``material_id`` column (``PATH:split`` picks a split of a saved DatasetDict).

A line or file that cannot be read becomes a record with an ``error``; nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from hfmat.evaluation.parallel import pool_map

_SAMPLE_NAME = re.compile(r"^(?P<id>.+)__(?P<i>\d+)$")


@dataclass
class PredictionRecord:
    """One candidate: its target id (None when unknown), sample index, CIF text, where it came from,
    and an error when the entry could not be read."""

    material_id: str | None
    index: int | None
    cif: str | None
    source: str
    error: str | None = None


def split_source(source: str) -> tuple[str, str | None]:
    """``"perov_5:test"`` -> ``("perov_5", "test")``; ``"path/to/x"`` -> ``("path/to/x", None)``."""
    head, sep, tail = str(source).rpartition(":")
    if sep and head and tail and "/" not in tail and "\\" not in tail:
        return head, tail
    return str(source), None


def _read_folder(folder: Path) -> list[PredictionRecord]:
    records = []
    files = sorted(folder.glob("*.cif"))
    for path in files:
        m = _SAMPLE_NAME.match(path.stem)
        mid, idx = (m.group("id"), int(m.group("i"))) if m else (path.stem, None)
        try:
            text = path.read_text()
            records.append(PredictionRecord(mid, idx, text, str(path)))
        except (OSError, UnicodeDecodeError) as err:
            records.append(PredictionRecord(mid, idx, None, str(path), f"cannot read file: {err}"))
    for path in sorted(folder.glob("*.mcif")):  # named, not silently passed over
        records.append(
            PredictionRecord(None, None, None, str(path), "magnetic CIF (.mcif) not read; rename it to .cif")
        )
    if not records:
        raise ValueError(f"no .cif files in {folder}")
    return records


def _read_jsonl(path: Path) -> list[PredictionRecord]:
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            records.append(PredictionRecord(None, None, None, where, f"line is not JSON: {err}"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("cif"), str):
            records.append(PredictionRecord(None, None, None, where, 'line has no string field "cif"'))
            continue
        mid = obj.get("material_id")
        idx = obj.get("sample")
        records.append(
            PredictionRecord(
                None if mid is None else str(mid), idx if isinstance(idx, int) else None, obj["cif"], where
            )
        )
    return records


def _read_saved_dataset(path: Path, split: str | None) -> list[PredictionRecord]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        if split is None:
            if len(ds) != 1:
                raise ValueError(f"{path} holds splits {sorted(ds)}: name one as {path}:SPLIT")
            split = next(iter(ds))
        if split not in ds:
            raise ValueError(f"{path} has no split {split!r} (it has {sorted(ds)})")
        ds = ds[split]
    if "cif" not in ds.column_names:
        raise ValueError(f"{path} has no 'cif' column (columns: {ds.column_names})")
    ids = ds["material_id"] if "material_id" in ds.column_names else [None] * len(ds)
    samples = ds["sample"] if "sample" in ds.column_names else [None] * len(ds)
    return [
        PredictionRecord(
            None if m is None else str(m), s, c, f"{path}[{i}]", None if isinstance(c, str) else "empty cif"
        )
        for i, (m, s, c) in enumerate(zip(ids, samples, ds["cif"]))
    ]


def read_predictions(source: str | Path) -> list[PredictionRecord]:
    """Candidate CIF texts from a folder of CIFs, a JSONL file or a saved dataset (see module doc)."""
    path_str, split = split_source(str(source))
    path = Path(path_str)
    if not path.exists():
        path, split = Path(str(source)), None
    if not path.exists():
        raise FileNotFoundError(f"predictions not found: {source}")
    if path.is_dir():
        if (path / "predictions.jsonl").is_file():  # the folder of an `hfmat generate/diffuse` run
            return _read_jsonl(path / "predictions.jsonl")
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            return _read_saved_dataset(path, split)
        return _read_folder(path)
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path)
    if path.suffix == ".cif":
        return [PredictionRecord(None, None, path.read_text(), str(path))]
    raise ValueError(f"{path}: expected a folder of .cif files, a .jsonl file or a saved dataset")


def check_readable(records: list[PredictionRecord], source) -> None:
    """ValueError when ``records`` hold no readable prediction (an empty file, or every line bad)."""
    if not records:
        raise ValueError(f"--predictions {source}: the prediction set is empty")
    if all(r.error for r in records):
        raise ValueError(
            f"--predictions {source}: none of its {len(records)} entries could be read (first: "
            f"{records[0].source}: {records[0].error})"
        )


def unreadable_issues(
    records: list[PredictionRecord], parsed: list[tuple[Structure | None, str | None]], source
) -> list[dict[str, Any]]:
    """One issue per prediction that could not be read or parsed, naming it by its source (file,
    line or row); ValueError when that is every prediction. Such a prediction is skipped: it counts
    as an invalid candidate / sample and is never given to the metrics' structure code."""
    bad = [
        (rec, rec.error or err or "no structure")
        for rec, (structure, err) in zip(records, parsed)
        if rec.error or structure is None
    ]
    if records and len(bad) == len(records):
        raise ValueError(
            f"--predictions {source}: none of its {len(records)} predictions could be read (first: "
            f"{bad[0][0].source}: {bad[0][1]})"
        )
    return [{"material_id": r.material_id, "source": r.source, "issue": f"skipped: {why}"} for r, why in bad]


def check_pairing(records: list[PredictionRecord], target_ids: list[str], source, reference) -> None:
    """ValueError when no readable CSP prediction names a target of the reference."""
    targets = set(target_ids)
    ids = [r.material_id for r in records if not r.error]
    if any(mid in targets for mid in ids):
        return
    named = [mid for mid in dict.fromkeys(ids) if mid is not None]
    if not named:
        raise ValueError(
            f"--predictions {source}: no prediction has a material_id, so none pairs with a target of "
            f"{reference} (write them with `hfmat generate/diffuse --reference {reference}`)"
        )
    shown = ", ".join(named[:3]) + (" ..." if len(named) > 3 else "")
    raise ValueError(
        f"--predictions {source}: 0 of its {len(named)} material_ids ({shown}) is a target of "
        f"{reference} ({len(target_ids)} targets, e.g. {', '.join(target_ids[:3])}): check --reference"
    )


def _parse(text: str | None) -> tuple[Structure | None, str | None]:
    from hfmat.cif import cif_to_structure

    if not isinstance(text, str):
        return None, "no CIF text"
    try:
        return cif_to_structure(text), None
    except Exception as err:  # noqa: BLE001 - any parser failure is reported per item
        return None, f"unparseable CIF: {err}"


def parse_cifs(
    texts: list[str | None], workers: int | None = None, progress: bool = True, desc: str = "parse CIFs"
) -> list[tuple[Structure | None, str | None]]:
    """``(structure, error)`` for each text (hfmat.cif.cif_to_structure), over a process pool."""
    return pool_map(_parse, texts, workers=workers, desc=desc, progress=progress)


def candidates_of(
    records: list[PredictionRecord], parsed: list[tuple[Structure | None, str | None]]
) -> tuple[dict[str, list[Structure | str]], list[dict[str, Any]]]:
    """Group parsed candidates by target id in sample order. A candidate that could not be read or
    parsed is kept as its error string (it counts as an invalid sample). Records with no id are
    returned as issues."""
    groups: dict[str, list[tuple[int, int, Structure | str]]] = {}
    issues: list[dict[str, Any]] = []
    for order, (rec, (structure, err)) in enumerate(zip(records, parsed)):
        if rec.material_id is None:
            if rec.error:  # already reported as unreadable
                continue
            issues.append(
                {"material_id": None, "source": rec.source, "issue": "prediction has no material_id; ignored"}
            )
            continue
        value = structure if structure is not None else (rec.error or err or "no structure")
        groups.setdefault(rec.material_id, []).append(
            (rec.index if rec.index is not None else order, order, value)
        )
    out = {}
    for mid, items in groups.items():
        items.sort(key=lambda t: (t[0], t[1]))
        seen = [t[0] for t in items]
        if len(set(seen)) != len(seen):
            issues.append({"material_id": mid, "issue": "repeated sample index; kept in file order"})
        out[mid] = [v for _, _, v in items]
    return out, issues


def load_reference(
    source: str,
    data_dir: str | Path | None = None,
    default_split: str = "test",
) -> tuple[list[str], list[str]]:
    """``(material_ids, cif_texts)`` of ``SOURCE[:split]`` through ``hfmat.data.load_crystal_dataset``
    (a benchmark name such as ``perov_5`` with ``data_dir``, or a path it accepts)."""
    from hfmat.data import load_crystal_dataset

    name, split = split_source(source)
    kwargs: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    ds = load_crystal_dataset(name, splits=None if split is None else [split], **kwargs)
    splits = list(ds.keys())
    if split is None:
        split = default_split if default_split in splits else (splits[0] if len(splits) == 1 else None)
        if split is None:
            raise ValueError(f"reference {source} has splits {splits}: name one as {name}:SPLIT")
    ds = ds[split]
    for col in ("material_id", "cif"):
        if col not in ds.column_names:
            raise ValueError(f"reference {source} has no {col!r} column (columns: {ds.column_names})")
    return [str(m) for m in ds["material_id"]], list(ds["cif"])


@dataclass
class CspInputs:
    """A CSP run's predictions paired with its reference (:func:`read_csp_inputs`)."""

    records: list[PredictionRecord]
    parsed: list[tuple[Structure | None, str | None]]  # per record, as parse_cifs gives it
    candidates: dict[str, list[Structure | str]]  # by target id, in sample order
    issues: list[dict[str, Any]]  # records without an id, repeated indices, the subset note
    ref_ids: list[str]  # the targets evaluated (all, or those with predictions)
    ref_cifs: list[str]
    n_reference: int  # targets in the reference


def read_csp_inputs(
    predictions: str | Path,
    reference: str,
    *,
    data_dir: str | Path | None = None,
    subset: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> CspInputs:
    """Read a CSP run's predictions (anything :func:`read_predictions` reads) and its reference
    ``SOURCE[:SPLIT]``, parse the predictions and group them by target. ``subset`` keeps only the
    targets that have predictions (and notes it in ``issues``). ValueError when no prediction is
    readable or none names a reference target."""
    records = read_predictions(predictions)
    check_readable(records, predictions)
    ref_ids, ref_cifs = load_reference(reference, data_dir=data_dir)
    n_reference = len(ref_ids)
    check_pairing(records, ref_ids, predictions, reference)
    parsed = parse_cifs([r.cif for r in records], workers=workers, progress=progress)
    candidates, issues = candidates_of(records, parsed)
    if subset:
        keep = [i for i, mid in enumerate(ref_ids) if mid in candidates]
        issues.append(
            {
                "material_id": None,
                "issue": f"{len(keep)} of the reference's {n_reference} targets evaluated (those with "
                "predictions)",
            }
        )
        ref_ids, ref_cifs = [ref_ids[i] for i in keep], [ref_cifs[i] for i in keep]
    return CspInputs(records, parsed, candidates, issues, ref_ids, ref_cifs, n_reference)
