"""The ``hfmat`` command as a whole: --version, ``python -m hfmat``, help text for every flag and
an example for every subcommand, errors that name flags, --device on a machine without it."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hfmat import __version__
from hfmat.cli import build_parser, main
from hfmat.cli.options import FORMAT_CHOICES, reword

#: the subcommands of this module's owner (cli/cif.py documents its own)
DOCUMENTED = ["demo", "examples", "tokenizer", "push", "evaluate", "generate", "diffuse"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"hfmat {__version__}"


def test_python_dash_m_hfmat():
    out = subprocess.run([sys.executable, "-m", "hfmat", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"hfmat {__version__}"
    out = subprocess.run([sys.executable, "-m", "hfmat", "generate", "-h"], capture_output=True, text=True)
    assert out.returncode == 0 and "--reference" in out.stdout and "examples:" in out.stdout


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_flag_has_help_and_every_command_an_example(name):
    parser = _subparsers(build_parser())[name]
    assert "hfmat " in (parser.epilog or ""), f"{name}: no example in its epilog"
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    for p in [parser, *_subparsers(parser).values()]:
        for action in p._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help"


def test_format_choices_are_the_writers():
    from hfmat.cif.export import FORMATS

    assert tuple(FORMATS) == FORMAT_CHOICES


def test_reword_names_flags():
    flags = {"compositions": "--composition", "num_atoms": "--num-atoms"}
    assert reword("compositions[1]: unknown element 'Xx'", flags) == "--composition #2: unknown element 'Xx'"
    assert reword("predicts for given compositions only (pass compositions=...)", flags) == (
        "predicts for given --composition only (pass --composition)"
    )
    assert reword("give compositions (structure prediction) or num_atoms, not both", flags) == (
        "give --composition (structure prediction) or --num-atoms, not both"
    )


@pytest.mark.parametrize("command", ["generate", "diffuse"])
def test_device_missing_is_one_line_naming_the_flag(command, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    rc = main([command, "--composition", "SrTiO3", "--device", "cuda", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"hfmat {command}: error: --device cuda: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert main([command, "--composition", "SrTiO3", "--device", "tpu", "--out", str(tmp_path)]) == 2
    assert "--device tpu" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "diffuse"])
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--composition", "SrTiO3", "--reference", "perov_5:test"], "give --composition or --reference"),
        (["--composition", "SrTiO3", "--limit", "2"], "--limit needs --reference"),
        (["--composition", "SrTiO3", "-n", "0"], "-n must be at least 1, got 0"),
        (["--composition", "SrTiO3", "--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_argument_errors_name_flags(command, extra, message, tmp_path, capsys):
    assert main([command, *extra, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["generate", "diffuse", "evaluate"])
def test_reference_without_data_names_data_dir(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ../shared/data here
    argv = [command, "--reference", "perov_5:test", "--out", "o"]
    if command == "evaluate":
        argv += ["--task", "csp", "--predictions", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no --data-dir given" in err and "pass --data-dir FOLDER" in err and not (tmp_path / "o").exists()
