"""``hfmat cif canonicalize|export|check FILE...``: the canonical CIF text of each file (the
language model's internal format, docs/cif_format.md), each file as a standard file for other
programs (P1 CIF, POSCAR or extended XYZ), or its validity report check by check (``--strict``:
CrystaLLM's space-group check; ``--json``: one JSON object per file). Each file is read and checked
under a time limit (``--time-limit``, hfmat.cif.timelimit); a file that cannot be read gives one
line on standard error naming it, and the others are still done."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    from hfmat.cif.export import FORMATS

    p = sub.add_parser(
        "cif",
        help="canonicalize, export or check CIF files",
        description="CIF files: the canonical text the language model reads and writes "
        "(canonicalize), standard files for other programs (export), validity checks (check).",
        epilog="examples:\n  hfmat cif canonicalize examples/TiO2_rutile.cif\n"
        "  hfmat cif export sample.cif --format poscar --out converted\n"
        "  hfmat cif check examples/*.cif",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cif_sub = p.add_subparsers(dest="cif_command", metavar="ACTION")
    cif_sub.required = True
    c = cif_sub.add_parser(
        "canonicalize",
        help="print the canonical CIF text of each file (the language model's format)",
        description="Print the canonical CIF text of each file: hfmat's internal format for the "
        "language model (the asymmetric unit only; other programs read it as part of the cell: "
        "use `hfmat cif export` for them).",
        epilog="example: hfmat cif canonicalize examples/TiO2_rutile.cif",
    )
    c.add_argument("files", nargs="+", type=Path, metavar="FILE", help="CIF files (any CIF pymatgen reads)")
    c.add_argument(
        "--symprec", type=float, default=0.1, help="spglib tolerance for the space group (default 0.1)"
    )
    c.add_argument("--decimals", type=int, default=4, help="digits after the point (default 4)")
    c.add_argument("--atom-props", action="store_true", help="add the atom-property block")
    c.set_defaults(func=run_canonicalize)
    e = cif_sub.add_parser(
        "export",
        help="write each CIF (canonical or any other) as a standard file for other programs",
        description="Read each CIF (a canonical text of the language model or any CIF) and write "
        "its structure as a standard P1 CIF with every site, a POSCAR or an extended XYZ file, "
        "which pymatgen, ASE, gemmi and VESTA read whole.",
        epilog="example: hfmat cif export lm_sample.cif --format poscar --out converted",
    )
    e.add_argument("files", nargs="+", type=Path, metavar="FILE", help="CIF files")
    e.add_argument("--format", choices=list(FORMATS), default="cif", help="file format (default cif: P1 CIF)")
    e.add_argument(
        "--out",
        type=Path,
        help="folder to write NAME.cif / NAME.vasp / NAME.extxyz into (default: print the one FILE's "
        "text to standard output)",
    )
    e.set_defaults(func=run_export)
    k = cif_sub.add_parser(
        "check",
        help="print the validity report of each file, check by check",
        description="Validity checks of each CIF file (docs/cif_format.md). By default a stated "
        "space group passes when the structure has it (a subgroup of the group spglib finds, so a "
        "P1 CIF passes); --strict is CrystaLLM's check for generated canonical CIFs (the stated "
        "group must be the one found).",
        epilog="example: hfmat cif check examples/*.cif --json",
    )
    k.add_argument("files", nargs="+", type=Path, metavar="FILE")
    k.add_argument(
        "--strict",
        action="store_true",
        help="strict mode: the stated space group must equal the group spglib finds, and a data_ "
        "formula with every count written must be the cell's exactly",
    )
    k.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    k.set_defaults(func=run_check)
    for command in (c, e, k):
        command.add_argument(
            "--time-limit",
            type=_seconds,
            default=None,
            metavar="S",
            help="seconds allowed per file; a file that takes longer is named and skipped "
            "(default: $HFMAT_CIF_TIME_LIMIT, else 30; 0: no limit)",
        )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _error(command: str, path: Path, err: Exception) -> None:
    """One line on standard error naming the file (a pymatgen message may span several)."""
    message = " ".join(str(err).split())
    message = message.removeprefix(f"{path}: ")  # an OSError names the file itself
    print(f"hfmat cif {command}: {path}: error: {message}", file=sys.stderr)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise FileNotFoundError(f"{path}: {err.strerror or err}") from None


def run_canonicalize(args) -> int:
    from hfmat.cif import CifError
    from hfmat.cif.timelimit import run_limited

    status = 0
    for path in args.files:
        try:
            text = run_limited(
                "canonicalize",
                "canonicalizing the CIF",
                _read(path),
                args.symprec,
                args.decimals,
                args.atom_props,
                time_limit_s=args.time_limit,
            )
        except (CifError, FileNotFoundError) as err:
            _error("canonicalize", path, err)
            status = 2
            continue
        if len(args.files) > 1:
            print(f"# {path}")
        sys.stdout.write(text)
    return status


def run_export(args) -> int:
    from hfmat.cif import CifError, cif_to_structure
    from hfmat.cif.export import FORMATS, structure_to_text

    if args.out is None and len(args.files) > 1:
        raise ValueError(f"--out: {len(args.files)} files given; name a folder to write them into")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in args.files:
        try:
            text = structure_to_text(cif_to_structure(_read(path), time_limit=args.time_limit), args.format)
        except (CifError, FileNotFoundError) as err:
            _error("export", path, err)
            status = 2
            continue
        if args.out is None:
            sys.stdout.write(text)
            continue
        target = args.out / (path.stem + FORMATS[args.format])
        if target.exists():
            print(f"hfmat cif export: {path}: error: {target} exists; not overwritten", file=sys.stderr)
            status = 2
            continue
        target.write_text(text)
        print(target)
    return status


def run_check(args) -> int:
    import json

    from hfmat.cif import check_validity

    mode = "strict" if args.strict else "subgroup"
    status = 0
    for path in args.files:
        try:
            report = check_validity(_read(path), mode=mode, time_limit=args.time_limit)
        except FileNotFoundError as err:
            _error("check", path, err)
            status = 2
            continue
        if args.json:
            print(json.dumps({"file": str(path), **report.to_dict()}))
        else:
            print(f"{path}: {'valid' if report.valid else 'INVALID'} ({mode} mode)")
            for check in report.checks:
                print(f"  {'PASS' if check.passed else 'FAIL'} {check.name}: {check.reason}")
        if not report.valid and status == 0:
            status = 1
    return status
