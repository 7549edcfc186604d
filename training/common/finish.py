"""The end of a run: the training record (``training_summary.json``), the final folder's place,
the summary printed, and the one-line error exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .accelerator import end_training


def earlier_stages(init_from: str | None) -> list[dict[str, Any]]:
    """The training record of the model a run starts from (``--init-from`` a folder or a shipped
    model's name), its own earlier stages first: the history a continued run keeps. Empty for a
    fresh run or a Hub repo id."""
    from hfmat.hub.provenance import portable_config, read_training_record, stages
    from hfmat.shipped import NAMES, shipped_model

    if init_from and Path(init_from).is_dir():
        record = read_training_record(init_from)
    elif init_from in NAMES:
        record = read_training_record(shipped_model(init_from))
    else:
        return []
    if record is None:
        return []
    return [{**stage, "config": portable_config(stage.get("config", {}))} for stage in stages(record)]


def write_training_summary(folder: Path, cfg: dict[str, Any], summary: dict[str, Any], **extra: Any) -> None:
    """``folder/training_summary.json``, which the model cards read and ``hfmat push`` publishes: the
    config (paths made portable: no absolute path of this machine), the summary, the date, what the
    data was (``dataset_kind``), the Hub repo id it started from (``base_model``, None if none), the
    records of the stages before (``previous``, for a run started from a folder), then ``extra``."""
    import time

    from hfmat.hub.provenance import base_model_of, dataset_kind, portable_config

    record = {
        "config": portable_config(cfg),
        "summary": summary,
        "date": time.strftime("%Y-%m-%d"),
        "dataset_kind": dataset_kind(cfg["dataset"]),
        "base_model": base_model_of(cfg.get("init_from")),
    }
    previous = earlier_stages(cfg.get("init_from"))
    if previous:
        record["previous"] = previous
    record.update(extra)
    (Path(folder) / "training_summary.json").write_text(json.dumps(record, indent=1) + "\n")


def final_dir_for(cfg: dict[str, Any]) -> Path:
    """Where the Hub-ready folder goes: ``final_dir``, else ``<output_dir>/final``."""
    return Path(cfg["final_dir"] or Path(cfg["output_dir"]) / "final")


def finish(accelerator, summary: dict[str, Any], write=None) -> dict[str, Any]:
    """End the run: ``write()`` on the main process once every process is here (the final folder;
    None for a run that stopped early and writes nothing), close the trackers, print the summary
    (when ``write`` is given). Returns ``summary``."""
    if write is None:
        end_training(accelerator)
        return summary
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write()
    end_training(accelerator)
    accelerator.print(json.dumps(summary, indent=1))
    return summary


def run_main(main, argv=None):
    """Run a script's ``main(argv)`` as the ``hfmat`` command does: bad input (``ValueError``, which
    :class:`ConfigError` and ``hfmat.hub``'s errors are, or ``FileNotFoundError``) ends the process
    with ``<script>: error: <message>`` on stderr and exit status 2 instead of a traceback."""
    try:
        return main(argv)
    except (ValueError, FileNotFoundError) as err:
        prog = Path(main.__globals__.get("__file__") or sys.argv[0]).name
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
