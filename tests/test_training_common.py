"""training/common/: the shared config keys and flags, and the optimisation loop both scripts run
(TrainingLoop) on a toy regression, where every callback and checkpoint can be counted."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    sys.path.insert(0, str(REPO / "training"))  # as the scripts do: they `import common`
    return importlib.import_module("common")


# The config keys of each script before the shared keys moved to common.DEFAULTS: configs, docs
# and the shipped training_summary.json files use them, so none may be lost or renamed (new keys are added here).
LM_KEYS = """dataset data_dir train_split eval_split eval_holdout max_train_samples max_eval_samples tokenizer
init_from n_layer n_head n_embd n_positions dropout lr min_lr_ratio weight_decay betas warmup_steps epochs
max_steps per_device_batch_size eval_batch_size gradient_accumulation_steps max_grad_norm mixed_precision seed
output_dir final_dir log_every eval_every save_every total_limit num_threads max_minutes model_name
dataset_note description limitations datasets""".split()
# datasets: several sources in one run (hfmat.data.sources)
DIFFUSION_KEYS = """dataset data_dir train_split eval_split eval_holdout max_train_samples max_eval_samples task
init_from hidden_dim num_layers num_frequencies time_embed_dim max_atoms lattice_scale_factor condition_every_layer num_train_timesteps sigma_min sigma_max
cost_lattice cost_coord cost_type predictor corrector_steps corrector_step_lr lr min_lr_ratio weight_decay betas
warmup_steps epochs max_steps per_device_batch_size eval_batch_size gradient_accumulation_steps max_grad_norm
mixed_precision ema_decay seed output_dir final_dir log_every eval_every save_every total_limit num_threads
max_minutes model_name dataset_note conditions condition_drop_prob text_encoder text_columns datasets""".split()
# conditions, condition_drop_prob: property guidance; text_encoder, text_columns: text guidance;
# datasets: several sources in one run, as train_cif_lm


def test_each_script_extends_the_shared_defaults_with_its_own(common):
    lm, diffusion = importlib.import_module("train_cif_lm"), importlib.import_module("train_diffusion")
    assert sorted(lm.DEFAULTS) == sorted(LM_KEYS)
    assert sorted(diffusion.DEFAULTS) == sorted(DIFFUSION_KEYS)
    assert set(common.DEFAULTS) <= set(lm.DEFAULTS) & set(diffusion.DEFAULTS)
    # the values that differ between the scripts stayed each script's own
    picked = ("weight_decay", "betas", "per_device_batch_size", "eval_batch_size", "seed", "output_dir")
    assert [lm.DEFAULTS[k] for k in picked] == [0.1, [0.9, 0.95], 16, 32, 1337, "runs/cif_lm"]
    assert [diffusion.DEFAULTS[k] for k in picked] == [0.0, [0.9, 0.999], 64, 128, 42, "runs/diffusion"]
    assert (lm.DEFAULTS["model_name"], diffusion.DEFAULTS["model_name"]) == ("cif-gpt2", "crystal-diffusion")


def test_flags_override_the_config_file(common, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("lr: 0.01\noutput_dir: runs/a\ninit_from: null\n")
    defaults = {**common.DEFAULTS, "init_from": None}
    parser = common.training_arguments("test", config_help="c", init_from_help="i")
    plain = common.config_from_args(parser.parse_args(["--config", str(config)]), defaults)
    assert (plain["lr"], plain["output_dir"], plain["init_from"], plain["seed"]) == (0.01, "runs/a", None, 0)
    args = parser.parse_args(
        ["--config", str(config), "--init-from", "org/name", "--output-dir", "runs/b", "--set", "lr=3e-4"]
    )
    cfg = common.config_from_args(args, defaults)
    assert (cfg["lr"], cfg["output_dir"], cfg["init_from"]) == (3e-4, "runs/b", "org/name")
    assert common.final_dir_for(cfg) == Path("runs/b/final")
    twice = parser.parse_args(["--config", str(config), "--set", "lr=3e-4", "--set", "seed=5"])
    assert [common.config_from_args(twice, defaults)[k] for k in ("lr", "seed")] == [3e-4, 5], "no --set lost"
    with pytest.raises(common.ConfigError, match="no whole batch of per_device_batch_size=64"):
        common.total_steps_for({**cfg, "per_device_batch_size": 64}, batches_per_epoch=0)
    assert common.final_dir_for({**cfg, "final_dir": "elsewhere"}) == Path("elsewhere")
    assert common.total_steps_for({**cfg, "max_steps": 7}, batches_per_epoch=100) == 7
    assert (
        common.total_steps_for({**cfg, "epochs": 2.5, "gradient_accumulation_steps": 2}, 9) == 12
    )  # ceil(22.5/2)


def test_output_dir_flag_also_moves_the_final_model(common, tmp_path):
    """A config whose final_dir is a shipped folder must not be overwritten by a run given --output-dir."""
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: runs/a\nfinal_dir: checkpoints/crystal-diffusion-perov5\n")
    parser = common.training_arguments("test", config_help="c", init_from_help="i")
    plain = common.config_from_args(parser.parse_args(["--config", str(config)]), common.DEFAULTS)
    assert common.final_dir_for(plain) == Path("checkpoints/crystal-diffusion-perov5")
    moved = ["--config", str(config), "--output-dir", "runs/mine"]
    assert common.final_dir_for(common.config_from_args(parser.parse_args(moved), common.DEFAULTS)) == Path(
        "runs/mine/final"
    )
    kept = [*moved, "--set", "final_dir=out/x"]
    assert common.final_dir_for(common.config_from_args(parser.parse_args(kept), common.DEFAULTS)) == Path(
        "out/x"
    )


def test_run_main_turns_bad_input_into_one_line_and_exit_status_2(common, tmp_path, capsys):
    from hfmat.hub import NotCachedError

    def bad_config(argv):
        return common.load_config(tmp_path / "missing.yaml")

    def not_cached(argv):
        raise NotCachedError("model repo a/b is not in the local Hugging Face cache")

    def bug(argv):
        raise RuntimeError("a real bug keeps its traceback")

    for main, expected in ((bad_config, "config file not found: "), (not_cached, "model repo a/b is not in")):
        with pytest.raises(SystemExit) as exc:
            common.run_main(main)
        assert exc.value.code == 2
        assert capsys.readouterr().err.startswith(f"test_training_common.py: error: {expected}")
    with pytest.raises(RuntimeError):
        common.run_main(bug)
    assert common.run_main(lambda argv: {"argv": argv}, ["x"]) == {"argv": ["x"]}


# ------------------------------------------------------------------------------ TrainingLoop


def test_holdout_and_limit(common):
    from datasets import Dataset

    rows = Dataset.from_dict({"i": list(range(20))})
    cfg = {**common.DEFAULTS, "eval_holdout": 5, "seed": 3}
    train, held = common.holdout_and_limit(rows, None, cfg)
    assert (len(train), len(held)) == (15, 5) and sorted([*train["i"], *held["i"]]) == list(range(20))
    again, _ = common.holdout_and_limit(rows, None, cfg)
    assert list(again["i"]) == list(train["i"])  # fixed by the seed
    small, given = common.holdout_and_limit(
        rows, rows, {**cfg, "max_train_samples": 4, "max_eval_samples": 2}
    )
    assert (list(small["i"]), list(given["i"])) == ([0, 1, 2, 3], [0, 1])  # an eval split is used as it is


def _toy_run(common, out: Path, *, total_steps=5, stop_after_steps=None, max_minutes=None):
    """y = 3x on 12 points, batches of 2, 2 micro-batches per optimizer step: 3 steps per epoch."""
    cfg = {
        **common.DEFAULTS,
        "output_dir": str(out),
        "per_device_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "total_limit": 2,
        "log_every": 2,
        "eval_every": 3,
        "save_every": 2,
        "max_minutes": max_minutes,
        "warmup_steps": 0,
        "lr": 0.05,
    }
    accelerator = common.make_accelerator(
        out, gradient_accumulation_steps=2, total_limit=2, log_with_tensorboard=False, cpu=True
    )
    x = torch.linspace(-1, 1, 12).unsqueeze(1)
    points = torch.utils.data.TensorDataset(x, 3 * x)
    loader, _ = common.dataloaders(points, points, None, cfg)
    model = torch.nn.Linear(1, 1)
    optimizer, scheduler = common.optimizer_and_scheduler_for(model, cfg, total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    progress, _ = common.start_or_resume(accelerator, None, out)
    loop = common.TrainingLoop(
        accelerator, cfg, model, optimizer, scheduler, loader, progress, total_steps, len(loader)
    )
    calls = {"losses": [], "logs": [], "evals": [], "after": 0}

    def loss(batch):
        value = torch.nn.functional.mse_loss(model(batch[0]), batch[1])
        calls["losses"].append(float(value.detach()))
        return {"loss": value, "twice": 2 * value.detach()}

    def evaluate():
        calls["evals"].append(progress.step)
        return {"step": progress.step}

    def log(means):
        calls["logs"].append((progress.step, means))
        return {"loss": f"{means['loss']:.3f}"}

    def after_step():
        calls["after"] += 1

    stop = loop.run(
        loss=loss,
        count=lambda b: torch.tensor(len(b[0])),
        evaluate=evaluate,
        log=log,
        after_step=after_step,
        stop_after_steps=stop_after_steps,
    )
    return loop, stop, calls


def test_loop_steps_logs_evaluates_and_saves_on_schedule(common, tmp_path):
    loop, stop, calls = _toy_run(common, tmp_path)
    progress = loop.progress
    assert stop == "done" and progress.step == 5 and calls["after"] == 5
    assert (progress.epoch, progress.batch_in_epoch) == (1, 4)  # 10 micro-batches: 6 + 4
    assert loop.epochs == pytest.approx(1 + 4 / 6)
    assert progress.tokens == 20 and loop.timer.count == 20  # 10 batches of 2 points
    assert [step for step, _ in calls["logs"]] == [2, 4, 5]  # every 2 steps, and the last
    # each log is the mean of every micro-batch since the previous one (4, 4, then 2)
    losses = calls["losses"]
    for (_, means), chunk in zip(calls["logs"], (losses[0:4], losses[4:8], losses[8:10])):
        assert means["loss"] == pytest.approx(sum(chunk) / len(chunk))
        assert means["twice"] == pytest.approx(2 * means["loss"])
    assert calls["evals"] == [3, 5] and loop.last_eval == {"step": 5} and not loop.needs_final_eval
    assert loop.last_loss == pytest.approx(losses[-1])
    assert loop.summary() == {
        "step": 5,
        "total_steps": 5,
        "epochs": loop.epochs,
        "train_loss": loop.last_loss,
    }
    # saved at steps 2 and 4; total_limit 2 keeps both slots
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    assert losses[-1] < losses[0]  # it learns


def test_loop_stops_after_steps_with_a_checkpoint(common, tmp_path):
    loop, stop, calls = _toy_run(common, tmp_path, stop_after_steps=1)
    assert stop == "stopped" and loop.progress.step == 1 and calls["evals"] == []
    assert loop.needs_final_eval
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["checkpoint_0"]


def test_loop_stops_out_of_time_with_a_checkpoint(common, tmp_path):
    loop, stop, _ = _toy_run(common, tmp_path, max_minutes=1e-9)
    assert stop == "time" and loop.progress.step == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["checkpoint_0"]


@pytest.mark.parametrize(
    "config", sorted((REPO / "training" / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_configs_name_no_absolute_path(config, common):
    """A config names its data relative to the directory the run starts in (the repo root:
    ../shared/data) or takes --data-dir; no path of one machine."""
    import os

    values = common.load_config(config)
    absolute = {k: v for k, v in values.items() if isinstance(v, str) and os.path.isabs(v)}
    assert not absolute, f"{config.name}: absolute paths {absolute}"
    if values.get("data_dir") and (REPO / "../shared/data").is_dir():
        assert (REPO / values["data_dir"]).is_dir(), f"{config.name}: data_dir {values['data_dir']} not found"
