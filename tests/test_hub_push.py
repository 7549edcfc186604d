"""``hfmat push``: folder checks per kind, then create_repo + upload_folder (HfApi patched)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from scripts import load_script

from hfmat.cli import main
from hfmat.hub import IncompleteArtifactError, check_folder, detect_kind, push_folder


def _builders():
    return load_script("tests/fixtures/make_fixtures.py", "hfmat_make_fixtures")


B = _builders()
LM_FILES = [
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
]


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory):
    return B.build_test_lm_folder(tmp_path_factory.mktemp("lm") / "tiny-lm", metrics={"match_rate@1": 12.5})


@pytest.fixture
def lm_copy(lm_folder, tmp_path):
    return Path(shutil.copytree(lm_folder, tmp_path / "lm"))


@pytest.fixture
def hub(monkeypatch):
    """Patch HfApi's network methods; record the calls."""
    calls = []

    class Commit:
        commit_url = "https://huggingface.co/org/x/commit/abc"

    def record(name, result):
        def method(self, *args, **kwargs):
            if name == "upload_folder":  # what would go, read while the folder exists
                folder = Path(kwargs["folder_path"])
                kwargs["uploaded"] = {f: (folder / f).read_bytes() for f in kwargs["allow_patterns"]}
            calls.append((name, args, kwargs))
            return result

        return method

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", record("create_repo", "https://huggingface.co/org/x")
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", record("create_branch", None))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", record("upload_folder", Commit()))
    return calls


def test_push_language_model_uploads_exactly_the_artifact(lm_copy, hub, capsys):
    (lm_copy / ".DS_Store").write_text("litter")
    (lm_copy / "__pycache__").mkdir()
    (lm_copy / "__pycache__" / "x.pyc").write_bytes(b"\0")
    rc = main(
        ["push", str(lm_copy), "--repo-id", "hfmat-test/tiny-lm", "--private", "--commit-message", "first"]
    )
    assert rc == 0
    assert [c[0] for c in hub] == ["create_repo", "upload_folder"]
    _, args, kwargs = hub[0]
    assert args == ("hfmat-test/tiny-lm",) and kwargs["private"] is True and kwargs["exist_ok"] is True
    assert kwargs["repo_type"] == "model"
    _, _, up = hub[1]
    assert up["repo_id"] == "hfmat-test/tiny-lm" and up["folder_path"] == str(lm_copy)
    assert up["allow_patterns"] == LM_FILES
    assert up["uploaded"] == {f: (lm_copy / f).read_bytes() for f in LM_FILES}
    assert up["commit_message"] == "first" and up["revision"] is None
    out = capsys.readouterr().out
    assert "complete language-model repository, 6 files" in out


def test_card_snippets_follow_the_target_repo(lm_copy, hub, capsys):
    """The card was rendered for hfmat-test/tiny-lm; pushed to me/cif-gpt2 its snippets name me/cif-gpt2."""
    from huggingface_hub import ModelCard

    before = (lm_copy / "README.md").read_text()
    assert 'from_pretrained("hfmat-test/tiny-lm")' in before
    assert main(["push", str(lm_copy), "--repo-id", "me/cif-gpt2"]) == 0
    up = hub[-1][2]
    assert up["folder_path"] != str(lm_copy) and up["allow_patterns"] == LM_FILES
    card = ModelCard(up["uploaded"]["README.md"].decode())
    assert 'from_pretrained("me/cif-gpt2")' in card.text and "hfmat-test/tiny-lm" not in card.text
    assert card.data.to_dict()["hfmat"]["repo_id"] == "me/cif-gpt2"
    assert card.data.to_dict()["license"] == "mit" and card.data.eval_results  # metadata kept
    assert up["uploaded"]["model.safetensors"] == (lm_copy / "model.safetensors").read_bytes()
    assert (lm_copy / "README.md").read_text() == before  # the folder on disk is left alone
    assert "README.md names hfmat-test/tiny-lm: was uploaded naming me/cif-gpt2" in capsys.readouterr().out


def test_push_to_a_branch_creates_it(lm_copy, hub):
    assert main(["push", str(lm_copy), "--repo-id", "me/cif-gpt2", "--revision", "v2"]) == 0
    assert [c[0] for c in hub] == ["create_repo", "create_branch", "upload_folder"]
    assert hub[1][2]["branch"] == "v2" and hub[1][2]["exist_ok"] is True
    assert hub[2][2]["revision"] == "v2"
    assert hub[2][2]["commit_message"] == "Upload language-model with hfmat"


def test_incomplete_folder_refused_naming_missing_files(lm_copy, hub, capsys):
    (lm_copy / "generation_config.json").unlink()
    (lm_copy / "model.safetensors").unlink()
    rc = main(["push", str(lm_copy), "--repo-id", "me/cif-gpt2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not a complete language-model repository" in err
    assert "generation_config.json" in err and "model.safetensors" in err
    assert hub == []  # nothing was created or uploaded


def test_missing_card_refused(lm_copy, hub):
    (lm_copy / "README.md").unlink()
    with pytest.raises(IncompleteArtifactError) as info:
        push_folder(lm_copy, "me/x")
    assert info.value.missing == ["README.md"]
    assert hub == []


def test_card_without_metadata_refused(lm_copy, hub, capsys):
    (lm_copy / "README.md").write_text("# my model\n\nno metadata\n")
    assert main(["push", str(lm_copy), "--repo-id", "me/x"]) == 2
    assert "no YAML metadata" in capsys.readouterr().err
    assert hub == []


def test_tokenizer_config_without_class_refused(lm_copy, hub):
    path = lm_copy / "tokenizer_config.json"
    config = json.loads(path.read_text())
    del config["tokenizer_class"]
    path.write_text(json.dumps(config))
    with pytest.raises(IncompleteArtifactError, match="no tokenizer_class"):
        push_folder(lm_copy, "me/x")


def test_pickled_weights_refused(lm_copy, hub):
    (lm_copy / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(IncompleteArtifactError, match="pytorch_model.bin"):
        push_folder(lm_copy, "me/x")


def test_truncated_weights_refused(lm_copy, hub):
    weights = lm_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors is truncated"):
        push_folder(lm_copy, "me/x")
    assert hub == []


def test_dry_run_uploads_nothing(lm_copy, hub, capsys):
    assert main(["push", str(lm_copy), "--repo-id", "me/x", "--dry-run"]) == 0
    assert hub == []
    out = capsys.readouterr().out
    assert "dry run" in out and "model.safetensors" in out


def test_tokenizer_folder(tmp_path, hub):
    folder = B.build_tokenizer_folder(tmp_path / "tok")
    assert detect_kind(folder) == "tokenizer"
    result = push_folder(folder, "me/cif-tokenizer")
    assert result.artifact.files == ["README.md", "tokenizer.json", "tokenizer_config.json"]
    assert hub[-1][2]["repo_type"] == "model"


def test_push_shipped_tokenizer(hub, capsys):
    """The committed tokenizer/ folder is a complete repository: `hfmat push tokenizer` takes it as it is."""
    shipped = Path(__file__).resolve().parents[1] / "tokenizer"
    assert main(["push", str(shipped), "--repo-id", "hfmat/cif-tokenizer"]) == 0
    up = hub[-1][2]
    assert up["folder_path"] == str(shipped)  # card already names the target: no rewrite
    assert up["allow_patterns"] == ["README.md", "tokenizer.json", "tokenizer_config.json"]
    assert "complete tokenizer repository, 3 files" in capsys.readouterr().out


def test_unknown_folder_says_what_is_expected(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["push", str(tmp_path), "--repo-id", "me/x"]) == 2
    err = capsys.readouterr().err
    assert "model_index.json" in err and "config.json" in err and "parquet" in err


def test_bad_repo_id_refused(lm_copy, hub):
    with pytest.raises(ValueError):
        push_folder(lm_copy, "not a repo id")
    assert hub == []


def test_check_folder_lists_artifact_files(lm_folder):
    artifact = check_folder(lm_folder)
    assert artifact.kind == "language-model" and artifact.files == LM_FILES


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory, examples_dir):
    from hfmat.data import load_crystal_dataset, to_hub_layout

    out = tmp_path_factory.mktemp("ds") / "examples"
    to_hub_layout(load_crystal_dataset(examples_dir), out, name="examples", license="mit")
    return out


def test_push_dataset_as_dataset_repo(dataset_folder, hub, tmp_path):
    folder = Path(shutil.copytree(dataset_folder, tmp_path / "ds"))
    assert detect_kind(folder) == "dataset"
    assert main(["push", str(folder), "--repo-id", "me/examples"]) == 0
    assert hub[0][2]["repo_type"] == "dataset" and hub[-1][2]["repo_type"] == "dataset"
    assert hub[-1][2]["allow_patterns"] == ["README.md", "data/train-00000-of-00001.parquet"]


def test_dataset_with_missing_data_file_refused(dataset_folder, hub, tmp_path, capsys):
    folder = Path(shutil.copytree(dataset_folder, tmp_path / "ds"))
    (folder / "data" / "train-00000-of-00001.parquet").unlink()
    assert main(["push", str(folder), "--repo-id", "me/examples"]) == 2
    err = capsys.readouterr().err
    assert "not a complete dataset repository" in err and "data/train-00000-of-00001.parquet" in err
    assert hub == []


def test_offline_push_says_so(lm_copy, capsys):
    """HF_HUB_OFFLINE=1 (set by conftest): the real HfApi refuses, the message says what to do."""
    assert main(["push", str(lm_copy), "--repo-id", "me/x"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE=1 is set, so nothing can be pushed to me/x: unset it" in err
    assert "passed its checks: 6 files" in err


def test_unauthorized_push_says_how_to_log_in(lm_copy, monkeypatch):
    from types import SimpleNamespace

    from huggingface_hub.errors import HfHubHTTPError

    from hfmat.hub import HubError

    response = SimpleNamespace(status_code=401, headers={}, request=None)

    def refuse(self, *args, **kwargs):
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=response)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refuse)
    with pytest.raises(HubError, match="HTTP 401.*hf auth login"):
        push_folder(lm_copy, "me/x")


def test_pushed_folder_loads_back_by_repo_id(lm_copy, monkeypatch, hf_cache, tmp_path):
    """Push with a fake Hub that stores the uploaded files as the repo's cached snapshot, then pull
    the model, its tokenizer and its card by repo id, offline."""
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def create_repo(self, repo_id, **kwargs):
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, allow_patterns, **kwargs):
        received = tmp_path / "received"
        for name in allow_patterns:
            (received / name).parent.mkdir(parents=True, exist_ok=True)
            (received / name).write_bytes((Path(folder_path) / name).read_bytes())
        hf_cache(repo_id, received)
        return "commit"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    push_folder(lm_copy, "me/cif-gpt2-roundtrip")
    model = AutoModelForCausalLM.from_pretrained("me/cif-gpt2-roundtrip")
    tok = AutoTokenizer.from_pretrained("me/cif-gpt2-roundtrip")
    assert model.config.vocab_size == len(tok)
    card = ModelCard.load(huggingface_hub.snapshot_download("me/cif-gpt2-roundtrip") + "/README.md")
    assert 'from_pretrained("me/cif-gpt2-roundtrip")' in card.text


def test_pipeline_push_to_hub_sends_hfmat_card(hub):
    """CrystalDiffusionPipeline.push_to_hub goes through hfmat's checks and card, not diffusers'
    generic card; save_pretrained alone already writes a complete repository."""
    from huggingface_hub import ModelCard

    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(Path(__file__).parent / "fixtures" / "pipeline-tiny")
    url = pipe.push_to_hub("me/my-diffusion", commit_message="mine")
    assert url == "https://huggingface.co/org/x/commit/abc"
    assert [c[0] for c in hub] == ["create_repo", "upload_folder"]
    up = hub[-1][2]
    assert up["repo_id"] == "me/my-diffusion" and up["commit_message"] == "mine"
    assert "README.md" in up["allow_patterns"] and "model_index.json" in up["allow_patterns"]
    card = ModelCard(up["uploaded"]["README.md"].decode())
    assert 'CrystalDiffusionPipeline.from_pretrained("me/my-diffusion")' in card.text
    assert card.data.library_name == "hfmat" and "Park, Hyunsoo" in card.text


def test_pipeline_save_pretrained_writes_a_complete_repo(tmp_path):
    from hfmat.diffusion import CrystalDiffusionPipeline

    pipe = CrystalDiffusionPipeline.from_pretrained(Path(__file__).parent / "fixtures" / "pipeline-tiny")
    pipe.save_pretrained(tmp_path / "pipe")
    assert check_folder(tmp_path / "pipe").kind == "pipeline"
    assert 'from_pretrained("hfmat/pipe")' in (tmp_path / "pipe" / "README.md").read_text()
