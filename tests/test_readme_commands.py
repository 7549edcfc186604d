"""The README's "Use it" bash block, run in order as written.

The working directory is a temporary folder laid out like a clone of hfmat beside the shared data:
``examples/``, ``checkpoints/`` and ``training/`` link to this repository's, ``../shared/data``
links to the benchmark data. Each ``hfmat`` line runs through ``hfmat.cli.main`` with the line's
arguments (what the console script does), in that folder, and must exit 0. Exceptions, all here:

- runtime: the two ``--reference perov_5:test --limit 20 -n 20`` runs (400 samples each, minutes
  on two cores) run with ``--limit 2 -n 2``; nothing else is changed;
- ``hfmat push`` needs the network: it runs with ``HfApi.create_repo`` / ``upload_folder`` patched
  (as tests/test_hub_push.py does) and the test checks what would have been uploaded;
- ``accelerate launch training/...``: training is not run here (tests/test_lm_training.py and
  tests/test_diffusion_training.py run those scripts on the same tiny configs); the test checks
  that the script and its config exist.
Any other kind of line fails the test, so a new README command needs a rule here.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import huggingface_hub
import pytest

from hfmat.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALLER = {"--limit": ("20", "2"), "-n": ("20", "2")}  # only on lines with --reference


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Use it\n") :]
    section = section[: section.index("\n## ", 1)]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [argv for argv in (shlex.split(line, comments=True) for line in lines) if argv]


def smaller(argv: list[str]) -> list[str]:
    if "--reference" not in argv:
        return argv
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word in SMALLER and out[i + 1] == SMALLER[word][0]:
            out[i + 1] = SMALLER[word][1]
    return out


@pytest.fixture
def clone_beside_data(shared_data, tmp_path, monkeypatch):
    work = tmp_path / "hfmat"
    work.mkdir()
    for name in ("examples", "checkpoints", "training"):
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data, target_is_directory=True)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def hub(monkeypatch):
    calls = []

    class Commit:
        commit_url = "https://huggingface.co/ORG/NAME/commit/0"

    def record(name, result):
        def method(self, *args, **kwargs):
            calls.append(
                (
                    name,
                    kwargs.get("repo_id", args[0] if args else None),
                    sorted(kwargs.get("allow_patterns") or []),
                )
            )
            return result

        return method

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", record("create_repo", "https://huggingface.co/ORG/NAME")
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", record("upload_folder", Commit()))
    return calls


def test_readme_use_it_block_runs_in_order(clone_beside_data, hub, capsys):
    commands = readme_commands()
    ran = []
    for argv in commands:
        if argv[:2] == ["accelerate", "launch"]:
            script, config = argv[2], argv[argv.index("--config") + 1]
            assert Path(script).is_file() and Path(config).is_file(), argv
            continue
        assert argv[0] == "hfmat", f"no rule in this test for README line {shlex.join(argv)}"
        rc = main(smaller(argv)[1:])
        assert rc == 0, f"{shlex.join(argv)} exited {rc}: {capsys.readouterr().err[-2000:]}"
        ran.append(argv[1])
    assert ran.count("generate") >= 2 and ran.count("diffuse") >= 2 and ran.count("evaluate") >= 1
    assert [c[:2] for c in hub] == [("create_repo", "ORG/NAME"), ("upload_folder", "ORG/NAME")]
    assert "model.safetensors" in hub[1][2]

    # what the commands composed: each run folder describes only itself; evaluate read what they wrote
    runs = clone_beside_data / "runs"
    for command, folder in (("generate", "lm_csp"), ("diffuse", "diffusion_csp")):
        summary = json.loads((runs / folder / "summary.json").read_text())
        assert summary["command"] == command and summary["reference"] == "perov_5:test"
        on_disk = sorted(p.name for p in (runs / folder).iterdir())
        assert on_disk == sorted(
            [f["file"] for f in summary["files"]] + ["predictions.jsonl", "summary.json"]
        )
    for folder in ("eval_lm", "eval_diffusion"):
        metrics = json.loads((runs / folder / "metrics.json").read_text())
        assert metrics["n_targets"] == 2 and metrics["n_reference_targets"] == 3785
