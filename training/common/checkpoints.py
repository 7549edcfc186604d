"""Checkpoints: where a run stands (``TrainingProgress``), saving with a completion marker, finding
the latest complete one, and resuming exactly (see the package docstring)."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainingProgress:
    """Where a run stands; registered with ``accelerator.register_for_checkpointing``."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (per process)
    tokens: int = 0  # training tokens seen (all processes)

    def state_dict(self) -> dict[str, int]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "tokens": self.tokens,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.tokens = int(state.get("tokens", 0))


_CHECKPOINT_RE = re.compile(r"^checkpoint_(\d+)$")


def checkpoint_index(path: str | os.PathLike) -> int:
    """The ``i`` of an Accelerate ``checkpoint_<i>`` folder; ValueError for another name."""
    match = _CHECKPOINT_RE.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not an Accelerate checkpoint folder (checkpoint_<i>)")
    return int(match.group(1))


#: Written into a checkpoint folder once every process has saved into it: a folder without it was
#: being written when the run was killed.
CHECKPOINT_COMPLETE = "hfmat_checkpoint_complete.json"


def find_latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The highest-numbered complete ``<output_dir>/checkpoints/checkpoint_<i>``, or None if there
    is none. A newer folder without :data:`CHECKPOINT_COMPLETE` (a run killed while saving) is
    skipped with a warning; when no folder has the marker (written before it existed) the
    highest-numbered one is taken."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = sorted(
        (p for p in root.iterdir() if p.is_dir() and _CHECKPOINT_RE.match(p.name)),
        key=checkpoint_index,
        reverse=True,
    )
    complete = [p for p in found if (p / CHECKPOINT_COMPLETE).is_file()]
    if not complete:
        return found[0] if found else None
    for path in found[: found.index(complete[0])]:
        print(f"warning: {path} is incomplete (the run stopped while writing it); skipped", file=sys.stderr)
    return complete[0]


def save_checkpoint(accelerator) -> Path | None:
    """``accelerator.save_state()`` into the next ``checkpoint_<i>``, then (once every process has
    saved) :data:`CHECKPOINT_COMPLETE` written atomically into it; returns the folder it wrote."""
    accelerator.wait_for_everyone()
    path = accelerator.save_state()
    accelerator.wait_for_everyone()
    if not path:
        return None
    if accelerator.is_main_process:
        marker = Path(path) / CHECKPOINT_COMPLETE
        partial = marker.with_suffix(".partial")
        partial.write_text(json.dumps({"folder": Path(path).name}) + "\n")
        os.replace(partial, marker)
        print(f"checkpoint saved: {path}", flush=True)
    return Path(path)


def resume_from_checkpoint(accelerator, resume: str | os.PathLike | bool, output_dir: str | os.PathLike):
    """Load a checkpoint (``resume`` a folder, or True/"latest" for the newest under ``output_dir``).

    Returns the folder loaded, or None when ``resume`` is "latest" and there is none yet (a
    fresh start). Sets ``project_configuration.iteration`` past the loaded index so the next
    ``save_state`` writes a new slot.
    """
    if resume in (True, "latest", "auto"):
        path = find_latest_checkpoint(output_dir)
        if path is None:
            return None
    else:
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint folder not found: {path}")
        marked = list(path.parent.glob(f"*/{CHECKPOINT_COMPLETE}"))
        if marked and not (path / CHECKPOINT_COMPLETE).is_file():
            raise ValueError(
                f"--resume {path}: incomplete checkpoint (the run stopped while writing it); "
                f"use --resume latest or {max((m.parent for m in marked), key=checkpoint_index)}"
            )
    accelerator.load_state(str(path))
    accelerator.project_configuration.iteration = checkpoint_index(path) + 1
    if accelerator.is_main_process:
        _set_aside_incomplete(path)
    accelerator.wait_for_everyone()
    return path


def _set_aside_incomplete(loaded: Path) -> None:
    """Rename the incomplete ``checkpoint_<i>`` folders above the one loaded to
    ``checkpoint_<i>.incomplete`` (the next save_state writes a fresh ``checkpoint_<i>``; Accelerate
    refuses an existing one)."""
    for path in loaded.parent.iterdir():
        if (
            _CHECKPOINT_RE.match(path.name)
            and checkpoint_index(path) > checkpoint_index(loaded)
            and not (path / CHECKPOINT_COMPLETE).is_file()
        ):
            aside = path.with_name(f"{path.name}.incomplete")
            if aside.exists():
                import shutil

                shutil.rmtree(aside)
            path.rename(aside)


def start_or_resume(accelerator, resume, output_dir, *state) -> tuple[TrainingProgress, Path | None]:
    """A fresh ``TrainingProgress`` registered for checkpointing (then each of ``state``, in order),
    loaded from ``resume`` when given (see ``resume_from_checkpoint``); returns it and the folder
    loaded (None for a fresh start)."""
    progress = TrainingProgress()
    for obj in (progress, *state):
        accelerator.register_for_checkpointing(obj)
    resumed = resume_from_checkpoint(accelerator, resume, output_dir) if resume else None
    if resumed:
        accelerator.print(f"resumed from {resumed} at step {progress.step} (epoch {progress.epoch})")
    return progress, resumed


def epoch_batches(dataloader, epoch: int, skip: int = 0):
    """The prepared ``dataloader`` for ``epoch`` (seeded shuffle), minus its first ``skip`` batches."""
    from accelerate import skip_first_batches

    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(epoch)
    if skip:
        return skip_first_batches(dataloader, skip)
    return dataloader
