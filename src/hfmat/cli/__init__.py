"""The ``hfmat`` command. Each subcommand lives in its own module under ``hfmat.cli`` and exposes
``register(subparsers)``; heavy imports happen inside the command, so ``hfmat --help`` is fast."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``hfmat --help`` lists them.
COMMANDS = ["demo", "examples", "cif", "tokenizer", "push", "evaluate", "generate", "diffuse"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfmat", description="Generative models for crystals.")
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
