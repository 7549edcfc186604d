"""The ``hfmat`` command. Each subcommand lives in its own module under ``hfmat.cli`` and exposes
``register(subparsers)``; heavy imports happen inside the command, so ``hfmat --help`` is fast.
Errors of bad input (ValueError, FileNotFoundError) end the command with one line naming the flag
at fault and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``hfmat --help`` lists them.
COMMANDS = ["demo", "examples", "cif", "tokenizer", "push", "evaluate", "generate", "diffuse", "relax", "app"]

EPILOG = """\
examples:
  hfmat demo
  hfmat generate --composition SrTiO3 -n 8 --out lm-srtio3
  hfmat diffuse --reference perov_5:test --limit 20 -n 20 --out runs/diffusion_csp
  hfmat evaluate --task csp --predictions runs/diffusion_csp/predictions.jsonl --reference perov_5:test --out runs/eval
`hfmat COMMAND --help` describes each command, with examples."""


def build_parser() -> argparse.ArgumentParser:
    from hfmat import __version__

    parser = argparse.ArgumentParser(
        prog="hfmat",
        description="Generative models for crystals.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hfmat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"hfmat.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"hfmat {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
