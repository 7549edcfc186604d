"""Flags shared by the sampling commands (``generate``, ``diffuse``, ``demo``), applied the same way
in each: the model, the device, threads, batch size, seed, output folder and file format."""

from __future__ import annotations

import argparse
import re

#: hfmat.cif.export.FORMATS, named here so that ``hfmat --help`` does not import pymatgen
#: (tests/test_cli_main.py checks that the two agree).
FORMAT_CHOICES = ("cif", "poscar", "extxyz")
SEED_NOTE = (
    "Under a fixed --seed the samples are reproducible for the same --batch-size; a different "
    "--batch-size draws different (equally valid) samples, because the random stream is shared "
    "by the crystals of a batch."
)


def add_parser(sub, name: str, *, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand parser whose epilog lists ``examples`` as written (one per line)."""
    return sub.add_parser(
        name,
        help=help,
        description=description.replace("``", ""),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_model_options(p, *, default_model: str, batch_default: int | None, batch_help: str) -> None:
    """--model, --device, --threads, --batch-size, --seed."""
    p.add_argument(
        "--model", default=None, help=f"model folder, Hub repo id or shipped name ({default_model})"
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--batch-size", type=int, default=batch_default, help=batch_help)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0). " + SEED_NOTE)


def add_output_options(p, *, out_required: bool) -> None:
    """--out, --format, --overwrite."""
    p.add_argument(
        "--out",
        required=out_required,
        default=None,
        help="new folder for the structure files, summary.json and predictions.jsonl"
        + ("" if out_required else " (default: print the structures)"),
    )
    p.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default="cif",
        help="file format: cif (standard P1 CIF, every site), poscar (VASP) or extxyz (default cif)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run of the same command in --out (never other files)",
    )


def add_reference_options(p) -> None:
    """--reference, --data-dir, --limit: prompt with the compositions of a reference split."""
    p.add_argument(
        "--reference",
        default=None,
        help="DATASET:SPLIT (e.g. perov_5:test) or a path: prompt with the cell compositions of its rows; "
        "predictions.jsonl then carries each row's material_id for `hfmat evaluate --task csp`",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the benchmark's CSVs (default: ../shared/data/DATASET from the current directory)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N rows of --reference")


def check_counts(args, *names: str) -> None:
    """Each named integer flag, when given, is at least 1."""
    for name in names:
        attr = "num_samples" if name == "-n" else name.lstrip("-").replace("-", "_")
        value = getattr(args, attr, None)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def torch_device(name: str):
    """``torch.device(name)``, checked to exist in this torch build; errors name --device."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name}: not a torch device ({err})") from None
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise ValueError(
                f"--device {name}: this torch build ({torch.__version__}) has no CUDA support; "
                "use --device cpu or install a CUDA build of torch"
            )
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is visible (torch.cuda.is_available() is False)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available in this torch build or on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: hfmat runs on cpu, cuda or mps")
    return device


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def reword(message: str, flags: dict[str, str]) -> str:
    """A library error message with its Python argument names replaced by the CLI's flags:
    ``compositions[1]`` -> ``--composition #2``, ``pass compositions=...`` -> ``pass --composition``."""
    for arg, flag in flags.items():
        message = re.sub(rf"\b{arg}\[(\d+)\]", lambda m, f=flag: f"{f} #{int(m.group(1)) + 1}", message)
        message = re.sub(rf"\b{arg}=(\.\.\.)?", flag + " ", message)
        message = re.sub(rf"(?<![-\w]){arg}\b", flag, message)
    return message.replace("  ", " ").replace(" )", ")")
