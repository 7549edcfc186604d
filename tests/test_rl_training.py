"""training/train_cif_lm_rl.py: a tiny GRPO run (trl) from the shipped LM completes and writes a
plain GPT-2 folder with its card that loads with transformers alone; bad configs exit 2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "cif_lm_rl_tiny.yaml"
pytest.importorskip("trl", reason='the rl extra is not installed: pip install "hfmat[rl]"')


@pytest.fixture(scope="module")
def rl_script():
    spec = importlib.util.spec_from_file_location("train_cif_lm_rl", REPO / "training" / "train_cif_lm_rl.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "training"))
    sys.modules["train_cif_lm_rl"] = module
    spec.loader.exec_module(module)
    return module


def _args(csv, out, *extra):
    overrides = [f"dataset={csv}", "split=train", "data_dir=null", "num_prompts=3", *extra]
    return ["--config", str(TINY), "--output-dir", str(out), "--set", *overrides]


def _run(rl_script, args) -> dict:
    """main() in this process, leaving accelerate's process-wide state as it found it."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    try:
        return rl_script.main(args)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        PartialState._reset_state()


@pytest.mark.slow
def test_tiny_grpo_run_writes_a_plain_gpt2_that_transformers_loads(rl_script, perov_val_csv, tmp_path):
    summary = _run(rl_script, _args(perov_val_csv, tmp_path, "generation_temperature=0.7"))
    final = tmp_path / "final"
    assert summary["step"] == 2 and summary["completions_scored"] == 4 and summary["prompts"] == 3
    assert 0 <= summary["validity_last_quarter"] <= 1 and summary["kl_last"] is not None
    assert summary["kl_first"] == pytest.approx(0.0, abs=1e-6), "the reference is the start model"
    names = {p.name for p in final.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "README.md",
        "training_summary.json",
    } <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert json.loads((final / "generation_config.json").read_text())["temperature"] == 0.7
    record = json.loads((final / "training_summary.json").read_text())
    assert record["method"] == "grpo" and record["base_model"] == "hfmat/cif-gpt2-perov5"
    assert record["previous"], "the supervised stages of the start model are kept"
    card = (final / "README.md").read_text()
    assert "base_model: hfmat/cif-gpt2-perov5" in card and "GRPO" in card and "{{" not in card
    # plain transformers in a fresh interpreter: no hfmat import, no remote code
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(final)!r}); t = AutoTokenizer.from_pretrained({str(final)!r})\n"
        "ids = torch.tensor([[t.bos_token_id] + t('data_Sr1Ti1O3\\n', add_special_tokens=False)['input_ids']])\n"
        "out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=3)\n"
        "assert 'hfmat' not in sys.modules\n"
        "print(type(m).__name__, t.decode(out[0, ids.shape[1]:]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("GPT2LMHeadModel _symmetry_space_group_name_H-M")


@pytest.mark.slow
def test_ref_model_sets_the_kl_reference(rl_script, perov_val_csv, tmp_path):
    """With the RL model as the KL reference, the first step's KL (the start model against it) is
    not zero, as it is when the reference is the start model itself."""
    summary = _run(rl_script, _args(perov_val_csv, tmp_path, "ref_model=cif-gpt2-perov5-rl"))
    assert summary["kl_first"] > 1e-3
    card = (tmp_path / "final" / "README.md").read_text()
    assert "to `cif-gpt2-perov5-rl` (not the starting model)" in card


def test_ref_model_must_be_a_gpt2_with_the_start_tokenizer(rl_script):
    from transformers import AutoTokenizer

    from hfmat.hub import load, resolve

    start = resolve("cif-gpt2-perov5")
    tokenizer = load(AutoTokenizer, start)
    cfg = {"init_from": "cif-gpt2-perov5", "ref_model": None}
    assert rl_script.kl_reference(cfg, start, tokenizer) == start
    cfg["ref_model"] = "cif-gpt2-perov5-rl"
    assert rl_script.kl_reference(cfg, start, tokenizer) == resolve("cif-gpt2-perov5-rl")
    cfg["ref_model"] = "crystal-diffusion-perov5"
    with pytest.raises(rl_script.common.ConfigError, match="ref_model 'crystal-diffusion-perov5'"):
        rl_script.kl_reference(cfg, start, tokenizer)
    cfg["ref_model"] = "no/such-model"
    with pytest.raises(rl_script.common.ConfigError, match="ref_model 'no/such-model'"):
        rl_script.kl_reference(cfg, start, tokenizer)
    other = AutoTokenizer.from_pretrained(str(resolve("prose-tokenizer-perov5")))
    cfg["ref_model"] = "cif-gpt2-perov5-rl"
    with pytest.raises(rl_script.common.ConfigError, match="its tokenizer differs"):
        rl_script.kl_reference(cfg, start, other)


def test_bad_configs_exit_2_naming_the_key(rl_script, script_exit, perov_val_csv, tmp_path):
    err = script_exit(rl_script, _args(perov_val_csv, tmp_path, "num_generations=1"))
    assert "num_generations must be at least 2" in err
    err = script_exit(rl_script, _args(perov_val_csv, tmp_path, "reward=validity=1,energ=2"))
    assert "unknown reward term 'energ'" in err
    assert not (tmp_path / "final").exists()


def test_match_reward_compares_with_the_prompt_splits_structures(rl_script, perov_val_csv):
    from hfmat.cif import structure_to_cif
    from hfmat.lm.rewards import CifReward

    cfg = {"dataset": str(perov_val_csv), "split": "train", "data_dir": None, "num_prompts": 2}
    structures = rl_script.split_structures(cfg)
    prompts = rl_script.prompt_dataset(cfg, structures)["prompt"]
    assert len(prompts) == 2 and len(structures) > 2
    reward = CifReward("match=1", references=structures)
    own = reward.score([structure_to_cif(s) for s in structures[:2]], prompts)
    assert [s.terms["match"] for s in own] == pytest.approx([1.0, 1.0], abs=0.01)  # CIF rounding
    # the second crystal written under the first one's prompt matches nothing of that composition
    swapped = reward.score([structure_to_cif(structures[1])], prompts[:1])
    assert structures[0].composition != structures[1].composition and swapped[0].terms["match"] == 0.0


def test_left_padded_prompts_score_as_unpadded_ones(rl_script):
    """trl scores left-padded batches without positions: the hook numbers them from the mask."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shipped = REPO / "checkpoints" / "cif-gpt2-perov5"
    model = AutoModelForCausalLM.from_pretrained(shipped).eval()
    tok = AutoTokenizer.from_pretrained(shipped)
    ids = [tok.bos_token_id] + tok("data_Sr1Ti1O3\n_symmetry", add_special_tokens=False)["input_ids"]
    padded = torch.tensor([[tok.pad_token_id] * 3 + ids])
    mask = torch.tensor([[0] * 3 + [1] * len(ids)])
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([ids])).logits[0]
        shifted = model(input_ids=padded, attention_mask=mask).logits[0, 3:]
        assert not torch.allclose(alone, shifted, atol=1e-3)  # what trl got before
        rl_script.positions_from_mask(model)
        fixed = model(input_ids=padded, attention_mask=mask).logits[0, 3:]
    assert torch.allclose(alone, fixed, atol=1e-4)


def test_hard_prompts_keep_the_failing_ones(rl_script, monkeypatch):
    """The probe keeps every prompt with a failing sample and the asked share of the others."""
    from types import SimpleNamespace

    from datasets import Dataset

    import hfmat.lm

    prompts = [f"data_{f}\n" for f in ("Sr1Ti1O3", "Ba1Ti1O3", "Ca1Ti1O3", "K1Nb1O3", "Na1Nb1O3")]
    fails = {("Ba1Ti1O3", 1), ("K1Nb1O3", 0)}  # (formula, sample index) that fail a check
    asked = {}

    def fake_generate(model, tok, compositions, num_samples, **kwargs):
        asked.update(kwargs, compositions=compositions, n=num_samples)
        return [SimpleNamespace(valid=(f, k) not in fails) for f in compositions for k in range(num_samples)]

    monkeypatch.setattr(hfmat.lm, "generate_cifs", fake_generate)
    data = Dataset.from_dict({"prompt": prompts})
    cfg = {"hard_prompt_samples": 2, "hard_keep_passing": 0.0, "temperature": 1.0, "top_k": 10, "seed": 3}
    kept, counts = rl_script.hard_prompts(data, None, None, cfg)
    assert list(kept["prompt"]) == [prompts[1], prompts[3]]
    assert asked["compositions"][0] == "Sr1Ti1O3" and asked["n"] == 2 and asked["seed"] == 3
    assert counts == {
        "probed": 5,
        "samples_per_prompt": 2,
        "probe_validity": 0.8,
        "hard": 2,
        "passing_kept": 0,
    }
    everything, counts = rl_script.hard_prompts(data, None, None, {**cfg, "hard_keep_passing": 1.0})
    assert list(everything["prompt"]) == prompts and counts["passing_kept"] == 3
    with pytest.raises(rl_script.common.ConfigError, match="hard_keep_passing"):
        rl_script.hard_prompts(data, None, None, {**cfg, "hard_keep_passing": 1.5})


def test_hard_prompts_from_targets_keep_the_prompts_whose_structure_fails_a_check(rl_script):
    """hard_prompts_from: targets: a prompt is hard when its own structure fails a validity check
    (here a CsCl cell squeezed so Cs-Cl is far below the expected bond length); nothing is sampled."""
    from datasets import Dataset
    from pymatgen.core import Lattice, Structure

    good = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    squeezed = Structure(Lattice.cubic(2.2), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert rl_script.invalid_targets([good, squeezed]) == [1]
    data = Dataset.from_dict({"prompt": ["data_Cs1Cl1\n", "data_Cs1Cl1\n"]})
    cfg = {"hard_prompt_samples": 0, "hard_keep_passing": 0.0, "seed": 0}
    kept, counts = rl_script.hard_prompts(data, None, None, cfg, structures=[good, squeezed])
    assert len(kept) == 1
    assert counts == {"probed": 2, "from": "targets", "target_validity": 0.5, "hard": 1, "passing_kept": 0}
    with pytest.raises(rl_script.common.ConfigError, match="hard_prompts_from must be"):
        rl_script.config(
            rl_script.parse_args(
                ["--config", "training/configs/cif_lm_rl_tiny.yaml", "--set", "hard_prompts_from=x"]
            )
        )
    from hfmat.lm.card import _rl_training_text

    record = {
        "config": {**CARD_CFG, "reward": "valid_match=1"},
        "summary": {**CARD_SUMMARY, "prompts": 1, "hard_prompt_probe": counts},
    }
    assert "the 1 whose own structure fails a validity check (50.0% of them)" in _rl_training_text(
        record, "b"
    )


#: a GRPO stage's record as the card reads it (config, summary)
CARD_CFG = {
    "reward": "validity=7,bonds=10",
    "potential": "chgnet",
    "reward_steps": 50,
    "dataset": "perov_5",
    "split": "val",
    "num_generations": 8,
    "temperature": 1.0,
    "top_k": 10,
    "beta": 0.04,
    "lr": 1e-4,
    "epsilon": 0.2,
    "seed": 3,
}
CARD_SUMMARY = {
    **dict.fromkeys(
        "step total_steps completions_scored reward_first_quarter reward_last_quarter validity_first_quarter "
        "validity_last_quarter energy_first_quarter energy_last_quarter kl_last hardware".split(),
        1,
    ),
    "wall_s": 60.0,
    "prompts": 319,
}


def test_rl_card_text_names_the_hard_prompts_and_numbers_the_stages():
    from hfmat.lm.card import _rl_training_text

    cfg, summary = dict(CARD_CFG), dict(CARD_SUMMARY)
    probe = {
        "probed": 1024,
        "samples_per_prompt": 1,
        "probe_validity": 0.922,
        "hard": 80,
        "passing_kept": 239,
    }
    earlier = [
        {"method": "grpo", "config": {**cfg, "reward": f"validity={n}"}, "summary": {**summary, "step": n}}
        for n in (100, 400)
    ]
    text = _rl_training_text(
        {"config": cfg, "summary": {**summary, "hard_prompt_probe": probe}, "previous": earlier}, "hfmat/base"
    )
    assert "the last of 3 GRPO stages" in text
    assert "319 of the first 1024 rows of `perov_5` val: the 80 where a probe sample" in text
    assert text.index("Stage 1: 100 steps, reward `validity=100`") < text.index("Stage 2: 400 steps")
    assert "supervised fine-tuning" not in text  # GRPO straight from the base
    # three supervised (rejection-sampling) rounds from the base, then the GRPO stages
    rounds = [{"config": cfg, "summary": summary, "base_model": b} for b in ("hfmat/base", None, None)]
    after_sft = _rl_training_text(
        {"config": cfg, "summary": summary, "previous": rounds + earlier}, "hfmat/base"
    )
    assert "Before the first GRPO stage, 3 supervised fine-tuning stages" in after_sft
    assert "the last of 3 GRPO stages" in after_sft
    plain = _rl_training_text({"config": cfg, "summary": summary, "previous": []}, "hfmat/base")
    assert "the first 319 rows of `perov_5` val" in plain and "Stage" not in plain and "stages" not in plain


def _sft_data(rl_script, perov_val_csv, batch_size=2, seed=0):
    from transformers import AutoTokenizer

    from hfmat.hub import load, resolve

    tokenizer = load(AutoTokenizer, resolve("cif-gpt2-perov5"))
    cfg = {
        "dataset": str(perov_val_csv),
        "data_dir": None,
        "split": "train",
        "sft_batch_size": batch_size,
        "seed": seed,
    }
    return rl_script.sft_batches(cfg, tokenizer, 1024), tokenizer


def test_sft_batches_draw_every_cif_once_per_pass_and_are_seeded(rl_script, perov_val_csv):
    sft, tokenizer = _sft_data(rl_script, perov_val_csv)
    assert sft.rows >= 4
    seen = []
    for _ in range(sft.rows // 2):
        batch = next(sft)
        assert batch["input_ids"].shape[0] == 2 and "labels" in batch
        for row in batch["input_ids"]:
            seen.append(tokenizer.decode([t for t in row.tolist() if t != tokenizer.pad_token_id]))
    assert len(set(seen)) == len(seen) == 2 * (sft.rows // 2), "no CIF twice within a pass"
    one, two = (next(_sft_data(rl_script, perov_val_csv)[0])["input_ids"] for _ in range(2))
    assert one.shape == two.shape and bool((one == two).all()), "the same seed draws the same batch"
    other = next(_sft_data(rl_script, perov_val_csv, seed=1)[0])["input_ids"]
    assert other.shape != one.shape or not bool((other == one).all())


def test_sft_term_adds_the_weighted_lm_loss_and_logs_it(rl_script, perov_val_csv):
    """trainer_class(base, batches, w).compute_loss = base's loss + w x the causal-LM loss of the
    next batch (the same batch a fresh seeded SftBatches gives), logged as sft_loss."""
    from collections import defaultdict

    import torch
    from transformers import AutoModelForCausalLM

    from hfmat.hub import load, resolve

    class Base:
        def __init__(self):
            self._metrics = {"train": defaultdict(list)}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return torch.tensor(1.5)

    model = load(AutoModelForCausalLM, resolve("cif-gpt2-perov5"))
    assert rl_script.trainer_class(Base, None, 0.5) is Base
    sft, _ = _sft_data(rl_script, perov_val_csv)
    trainer = rl_script.trainer_class(Base, sft, 0.5)()
    loss = trainer.compute_loss(model, inputs={})
    expected = model(**next(_sft_data(rl_script, perov_val_csv)[0])).loss
    assert loss.item() == pytest.approx(1.5 + 0.5 * expected.item(), rel=1e-5)
    assert trainer._metrics["train"]["sft_loss"] == [pytest.approx(expected.item(), rel=1e-5)]
    assert loss.requires_grad, "the supervised term reaches the weights"


@pytest.mark.slow
def test_tiny_grpo_run_with_the_sft_term(rl_script, perov_val_csv, tmp_path):
    summary = _run(rl_script, _args(perov_val_csv, tmp_path, "sft_weight=0.5", "sft_batch_size=2"))
    assert summary["sft_rows"] >= 4 and 0 < summary["sft_loss_first"] < 10
    card = (tmp_path / "final" / "README.md").read_text()
    assert "0.5 times the causal-LM loss on 2 of the split's" in card and "PPO-ptx" in card


def test_bad_sft_configs_exit_2(rl_script, script_exit, perov_val_csv, tmp_path):
    err = script_exit(rl_script, _args(perov_val_csv, tmp_path, "sft_weight=-1"))
    assert "sft_weight must be a number >= 0" in err
    err = script_exit(rl_script, _args(perov_val_csv, tmp_path, "sft_weight=1", "sft_batch_size=0"))
    assert "sft_batch_size must be a positive integer" in err
