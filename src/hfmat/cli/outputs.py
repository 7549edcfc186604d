"""What a sampling command writes: one file per structure (hfmat.cif.export), the raw text of a
language-model sample that has no structure (``NAME.lm.txt``), ``summary.json`` (every file with its
prompt, validity verdict and format) and ``predictions.jsonl`` (what ``hfmat evaluate`` reads).

A run writes into a new or empty folder. A folder holding anything else is refused, unless it holds
an earlier run of the same command and ``--overwrite`` is given: then that run's files (the ones its
``summary.json`` lists) are removed first. Files hfmat did not write there are never touched."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hfmat.cif.export import FORMATS, structure_to_text

SUMMARY = "summary.json"
PREDICTIONS = "predictions.jsonl"


def _listed_files(folder: Path) -> tuple[str | None, list[str]]:
    """(command, files) of the hfmat run recorded in ``folder/summary.json``; (None, []) if none."""
    try:
        summary = json.loads((folder / SUMMARY).read_text())
    except (OSError, ValueError):
        return None, []
    if not isinstance(summary, dict) or not isinstance(summary.get("files"), list):
        return None, []
    names = [f.get("file") for f in summary["files"] if isinstance(f, dict)]
    relaxed = summary.get("relax") if isinstance(summary.get("relax"), dict) else {}
    names += [relaxed.get("table"), *(relaxed.get("files") or [])]  # written by --relax
    names = [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]
    return summary.get("command"), [SUMMARY, PREDICTIONS, *names]


def check_out(out: Path, command: str, overwrite: bool) -> list[str]:
    """Check that a run of ``command`` may write into ``out`` (see the module doc): the names of an
    earlier run's files to remove first (none for a new or empty folder); ValueError naming --out
    if not. Nothing is created or removed here."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not present:
        return []
    owner, listed = _listed_files(out)
    foreign = [name for name in present if name not in listed]
    if overwrite and owner == command and not foreign:
        return listed
    by = f" (an earlier `hfmat {owner}` run)" if owner else ""
    shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
    how = f"choose a new folder with --out (e.g. --out {out.name}-2)"
    if owner == command and not foreign:
        how += " or pass --overwrite to replace that run"
    elif foreign and owner == command:
        how += f"; --overwrite does not apply: {', '.join(foreign[:5])} were not written by that run"
    raise ValueError(f"--out {out} already holds {shown}{by}: {how}")


@dataclass
class RunWriter:
    """Writes the structures of one run into ``out`` (or prints them when ``out`` is None)."""

    out: Path | None
    command: str
    fmt: str = "cif"
    meta: dict = field(default_factory=dict)
    replace: list[str] = field(default_factory=list)  # an earlier run's files (check_out)
    entries: list[dict] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    structures: list[tuple] = field(default_factory=list, repr=False)  # (file name, Structure) written

    @classmethod
    def for_run(cls, args, command: str, model: str, out: Path | None, replace: list[str]) -> RunWriter:
        """The writer of a ``generate`` / ``diffuse`` run, its summary naming the model and the flags
        that decide the samples."""
        meta = {"model": model, "reference": args.reference, "seed": args.seed, "batch_size": args.batch_size}
        return cls(out, command, args.format, meta, replace)

    def _open(self) -> None:
        """Create the folder (and remove the earlier run's files) when the first file is written."""
        if self.out is not None and not self.entries:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in self.replace:
                (self.out / name).unlink(missing_ok=True)

    def add(self, stem: str, structure, entry: dict, raw_text: str | None = None) -> str:
        """Write ``structure`` as ``stem`` + the format's suffix, or, when it is None, ``raw_text``
        as ``stem.lm.txt``; records ``entry`` (prompt, verdict, ...) in the summary and a
        predictions line (its CIF, or the raw text when there is no structure). Returns the name."""
        if structure is not None:
            name, text = stem + FORMATS[self.fmt], structure_to_text(structure, self.fmt)
            cif = text if self.fmt == "cif" else structure_to_text(structure, "cif")
            kind = self.fmt
            self.structures.append((name, structure))
        else:
            name, text, cif, kind = stem + ".lm.txt", raw_text or "", raw_text or "", "lm-text"
        self._open()
        if self.out is not None:
            (self.out / name).write_text(text)
        else:
            print(text, end="" if text.endswith("\n") else "\n")
        self.entries.append({"file": name, "format": kind, **entry})
        line = {"material_id": entry.get("material_id"), "sample": entry.get("sample"), "cif": cif}
        self.predictions.append({k: v for k, v in line.items() if v is not None} | {"file": name})
        return name

    def finish(self) -> None:
        """Write summary.json and predictions.jsonl (nothing when printing)."""
        if self.out is None:
            return
        self._open()
        n_valid = sum(bool(e.get("valid")) for e in self.entries)
        summary = {"command": self.command, **self.meta, "format": self.fmt, "predictions": PREDICTIONS}
        summary |= {"n_files": len(self.entries), "n_valid": n_valid, "files": self.entries}
        (self.out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
        lines = "".join(json.dumps(p) + "\n" for p in self.predictions)
        (self.out / PREDICTIONS).write_text(lines)

    def table(self, line: str) -> None:
        """A line of the run's table: stdout when writing files, stderr when printing structures."""
        print(line, file=sys.stdout if self.out is not None else sys.stderr)
