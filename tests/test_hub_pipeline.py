"""Diffusion pipeline folders on the Hub: push checks (HfApi patched) and load-failure diagnostics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest

from hfmat.cli import main
from hfmat.hub import IncompatibleArtifactError, IncompleteArtifactError, load, missing_classes, push_folder

PIPELINE = Path(__file__).parent / "fixtures" / "pipeline-tiny"
PIPELINE_FILES = [
    "README.md",
    "coord_scheduler/scheduler_config.json",
    "denoiser/config.json",
    "denoiser/diffusion_pytorch_model.safetensors",
    "lattice_scheduler/scheduler_config.json",
    "model_index.json",
    "training_summary.json",
    "type_scheduler/scheduler_config.json",
]


@pytest.fixture
def pipe_copy(tmp_path):
    return Path(shutil.copytree(PIPELINE, tmp_path / "pipe"))


@pytest.fixture
def hub(monkeypatch):
    calls = []

    def record(name):
        def method(self, *args, **kwargs):
            calls.append((name, args, kwargs))
            return f"https://huggingface.co/{args[0] if args else kwargs.get('repo_id')}"

        return method

    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, record(name))
    return calls


def test_push_pipeline(pipe_copy, hub, capsys):
    assert main(["push", str(pipe_copy), "--repo-id", "me/crystal-diffusion", "--private"]) == 0
    assert [c[0] for c in hub] == ["create_repo", "upload_folder"]
    assert hub[0][2]["private"] is True and hub[0][2]["repo_type"] == "model"
    assert hub[1][2]["allow_patterns"] == PIPELINE_FILES
    assert "complete pipeline repository, 8 files" in capsys.readouterr().out


def test_incomplete_pipeline_names_missing_component_files(pipe_copy, hub, capsys):
    (pipe_copy / "denoiser" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(pipe_copy / "type_scheduler")
    assert main(["push", str(pipe_copy), "--repo-id", "me/crystal-diffusion"]) == 2
    err = capsys.readouterr().err
    assert "denoiser/diffusion_pytorch_model.safetensors" in err
    assert "type_scheduler/ (component hfmat.diffusion.schedulers.d3pm.D3PMScheduler)" in err
    assert hub == []


def test_pipeline_without_card_refused(pipe_copy, hub):
    (pipe_copy / "README.md").unlink()
    with pytest.raises(IncompleteArtifactError, match="missing README.md"):
        push_folder(pipe_copy, "me/x")


def test_moved_class_and_old_versions_are_named(pipe_copy):
    from hfmat.diffusion import CrystalDiffusionPipeline

    index = json.loads((pipe_copy / "model_index.json").read_text())
    index["denoiser"] = ["hfmat.diffusion.old_denoiser", "CrystalDenoiser"]
    index["_diffusers_version"] = "0.30.0"
    (pipe_copy / "model_index.json").write_text(json.dumps(index))
    assert missing_classes(pipe_copy) == ["denoiser = hfmat.diffusion.old_denoiser.CrystalDenoiser"]
    with pytest.raises(IncompatibleArtifactError) as info:
        load(CrystalDiffusionPipeline, pipe_copy)
    message = str(info.value)
    assert "names classes this installation does not have: denoiser = hfmat.diffusion.old_denoiser" in message
    assert "diffusers 0.30.0 (installed: " in message


def test_truncated_denoiser_weights_named(pipe_copy):
    from hfmat.diffusion import CrystalDiffusionPipeline

    weights = pipe_copy / "denoiser" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"denoiser/diffusion_pytorch_model\.safetensors is truncated"):
        load(CrystalDiffusionPipeline, pipe_copy)
