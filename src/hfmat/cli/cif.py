"""``hfmat cif canonicalize FILE...`` / ``hfmat cif check FILE...``: the canonical CIF text of each
file, or its validity report check by check."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("cif", help="canonicalize CIF files or check their validity")
    cif_sub = p.add_subparsers(dest="cif_command", metavar="ACTION")
    cif_sub.required = True
    c = cif_sub.add_parser("canonicalize", help="print the canonical CIF text of each file")
    c.add_argument("files", nargs="+", type=Path, metavar="FILE")
    c.add_argument("--symprec", type=float, default=0.1)
    c.add_argument("--decimals", type=int, default=4)
    c.add_argument("--atom-props", action="store_true", help="add the atom-property block")
    c.set_defaults(func=run_canonicalize)
    k = cif_sub.add_parser("check", help="print the validity report of each file, check by check")
    k.add_argument("files", nargs="+", type=Path, metavar="FILE")
    k.set_defaults(func=run_check)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise FileNotFoundError(f"{path}: {err.strerror or err}") from None


def run_canonicalize(args) -> int:
    from hfmat.cif import CifError, cif_to_structure, structure_to_cif

    status = 0
    for path in args.files:
        try:
            structure = cif_to_structure(_read(path))
            text = structure_to_cif(structure, args.symprec, args.decimals, args.atom_props)
        except (CifError, FileNotFoundError) as err:
            print(f"hfmat cif canonicalize: {path}: error: {err}", file=sys.stderr)
            status = 2
            continue
        if len(args.files) > 1:
            print(f"# {path}")
        sys.stdout.write(text)
    return status


def run_check(args) -> int:
    from hfmat.cif import check_validity

    status = 0
    for path in args.files:
        try:
            report = check_validity(_read(path))
        except FileNotFoundError as err:
            print(f"hfmat cif check: error: {err}", file=sys.stderr)
            status = 2
            continue
        print(f"{path}: {'valid' if report.valid else 'INVALID'}")
        for check in report.checks:
            print(f"  {'PASS' if check.passed else 'FAIL'} {check.name}: {check.reason}")
        if not report.valid and status == 0:
            status = 1
    return status
