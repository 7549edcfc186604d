"""Fine-tune a CIF language model with reinforcement learning: trl's GRPO, hfmat's rewards.

    accelerate launch training/train_cif_lm_rl.py --config training/configs/cif_lm_rl_perov5.yaml
    python training/train_cif_lm_rl.py --config training/configs/cif_lm_rl_tiny.yaml --set max_steps=2

Prompts are the cell compositions of a dataset split (``data_Sr1Ti1O3\\n``, as ``hfmat generate
--reference`` prompts). For each prompt the model writes ``num_generations`` CIFs with hfmat's
grammar-constrained, KV-cached sampler (trl's ``rollout_func``), :class:`hfmat.lm.rewards.CifReward`
scores them (validity, composition, space group, the potential's energy after a short relaxation),
and ``trl.GRPOTrainer`` takes a step on the group-relative advantages with a KL penalty (``beta``)
to the starting model, which keeps the CIF grammar the model learnt. The start is a shipped LM, a
folder or a repo id (``init_from``); the result is a plain ``GPT2LMHeadModel`` folder at
``<output_dir>/final`` (config.json, generation_config.json, model.safetensors, tokenizer files,
training_summary.json, README.md card) that loads with ``AutoModelForCausalLM.from_pretrained``
and no hfmat import, as the supervised script's folders do. docs/reward_guidance.md has the recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (training/common: config files, threads, the training record)

#: Every key a config may set, with its default.
DEFAULTS: dict = {
    # start and data
    "init_from": "cif-gpt2-perov5",  # a shipped LM's name, a folder or a repo id
    "dataset": "perov_5",
    "data_dir": "../shared/data",
    "split": "val",  # the split whose compositions are the prompts
    "num_prompts": 256,  # its first rows (None: all)
    # hard prompts: before training, sample this many CIFs per prompt with the start model and keep
    # the prompts where any fails a validity check, plus hard_keep_passing of the others (0: off)
    "hard_prompt_samples": 0,
    "hard_keep_passing": 0.25,
    # what makes a prompt hard: "samples" (the probe above) or "targets" (the prompt's own structure
    # in the split, written as hfmat's canonical CIF, fails a validity check: the model has to find
    # a valid geometry the data does not show it; hard_prompt_samples is then not used)
    "hard_prompts_from": "samples",
    "dataset_note": None,
    # reward (hfmat.lm.rewards.CifReward)
    "reward": "validity=1,composition=1,energy=0.1",
    "potential": "chgnet",
    "reward_fmax": 0.1,
    "reward_steps": 50,
    # GRPO (trl.GRPOConfig)
    "num_generations": 8,  # completions per prompt (the group)
    "prompts_per_step": 1,  # prompts per optimizer step and process
    "gradient_accumulation_steps": 1,
    "max_steps": 50,
    "lr": 1.0e-5,
    "beta": 0.04,  # KL penalty to the reference model
    # the KL penalty's reference: a shipped LM's name, a folder or a repo id with the start model's
    # tokenizer (None: the start model, trl's default)
    "ref_model": None,
    # a supervised term beside GRPO's loss (InstructGPT's PPO-ptx): sft_weight times the causal-LM
    # loss on sft_batch_size of the prompt split's own CIFs, each step (0: off). The prompts' true
    # structures keep pulling on the model while the rewards push it towards valid CIFs.
    "sft_weight": 0.0,
    "sft_batch_size": 8,
    "epsilon": 0.2,
    "max_grad_norm": 1.0,
    "temperature": 1.0,
    "top_k": 10,
    # the sampling temperature written into the final generation_config.json (what hfmat generate
    # and generate_cifs use unless told otherwise); None: 1.0
    "generation_temperature": None,
    "seed": 0,
    "logging_steps": 1,
    "max_minutes": None,  # stop after the step that passes this wall time (then write final/ as usual)
    "num_threads": None,
    # output
    "output_dir": "runs/cif_lm_rl",
    "final_dir": None,
    "model_name": "cif-gpt2-rl",
    "description": None,
    "limitations": None,
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML or JSON config (training/configs/cif_lm_rl_*.yaml)")
    p.add_argument(
        "--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    p.add_argument("--init-from", default=None, help="GPT-2 to start from: shipped name, folder or repo id")
    p.add_argument("--data-dir", default=None, help="folder that holds the dataset (default: the config's)")
    p.add_argument("--output-dir", default=None, help="where checkpoints and final/ go")
    return p.parse_args(argv)


def config(args) -> dict:
    cfg = common.merge_overrides(common.load_config(args.config, DEFAULTS), args.set)
    for key in ("init_from", "data_dir", "output_dir"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    for key in ("num_generations", "prompts_per_step", "max_steps", "gradient_accumulation_steps"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise common.ConfigError(f"{key} must be a positive integer, got {cfg[key]!r}")
    if not isinstance(cfg["sft_weight"], (int, float)) or cfg["sft_weight"] < 0:
        raise common.ConfigError(f"sft_weight must be a number >= 0, got {cfg['sft_weight']!r}")
    if not isinstance(cfg["sft_batch_size"], int) or cfg["sft_batch_size"] < 1:
        raise common.ConfigError(f"sft_batch_size must be a positive integer, got {cfg['sft_batch_size']!r}")
    if cfg["hard_prompts_from"] not in ("samples", "targets"):
        raise common.ConfigError(
            f"hard_prompts_from must be 'samples' or 'targets', got {cfg['hard_prompts_from']!r}"
        )
    if cfg["num_generations"] < 2:
        raise common.ConfigError(
            "num_generations must be at least 2: GRPO compares completions within a group"
        )
    return cfg


# ------------------------------------------------------------------------------------ prompts


def split_structures(cfg: dict) -> list:
    """The structures of the prompt split (``dataset``:``split``), in file order; rows that do not
    parse are skipped."""
    from hfmat.cif import cif_to_structure
    from hfmat.evaluation.io import load_reference

    source = f"{cfg['dataset']}:{cfg['split']}"
    _, cifs = load_reference(source, data_dir=cfg["data_dir"], default_split=cfg["split"])
    structures = []
    for text in cifs:
        try:
            structures.append(cif_to_structure(text))
        except Exception:  # noqa: BLE001 - an unreadable row gives no prompt
            continue
    if not structures:
        raise ValueError(f"{source}: no structure could be read for a prompt")
    return structures


def prompt_dataset(cfg: dict, structures: list | None = None):
    """A ``datasets.Dataset`` with a ``prompt`` column: the cell composition of each of the split's
    first ``num_prompts`` structures (:func:`split_structures`) as a canonical-CIF prompt."""
    from datasets import Dataset

    from hfmat.lm.prompts import composition_prompt

    structures = split_structures(cfg) if structures is None else structures
    limit = cfg["num_prompts"]
    return Dataset.from_dict(
        {"prompt": [composition_prompt(s.composition) for s in (structures[:limit] if limit else structures)]}
    )


def invalid_targets(structures: list) -> list[int]:
    """The indices of ``structures`` whose canonical CIF fails a validity check (strict mode, as
    ``benchmarks/bench_validity_reference.py`` counts the datasets' own structures) or cannot be
    written or checked."""
    from hfmat.cif.batch import check_canonical_many

    checked = check_canonical_many(structures, num_workers=1)
    return [i for i, (_, report) in enumerate(checked) if report is None or not report.valid]


def hard_prompts(dataset, model, tokenizer, cfg: dict, structures: list | None = None):
    """The prompts the start model still gets wrong, where GRPO's groups carry signal: each prompt
    is sampled ``hard_prompt_samples`` times (``generate_cifs``, constrained, the run's temperature
    and top-k, seeded); the prompts with a sample that fails any validity check are kept, with a
    seeded ``hard_keep_passing`` fraction of the others so the rest of the chemistry stays in the
    batches. With ``structures`` (the prompts' own structures, in order; ``hard_prompts_from:
    targets``) a prompt is hard when its structure fails a check instead (:func:`invalid_targets`),
    and nothing is sampled. Returns the filtered dataset and the counts for the training record."""
    import random

    from hfmat.lm import generate_cifs

    n = int(cfg["hard_prompt_samples"])
    keep = float(cfg["hard_keep_passing"])
    if not 0.0 <= keep <= 1.0:
        raise common.ConfigError(f"hard_keep_passing must be in [0, 1], got {keep}")
    prompts = list(dataset["prompt"])
    if structures is not None:  # hard_prompts_from: targets
        hard = invalid_targets(structures[: len(prompts)])
        counts = {"probed": len(prompts), "from": "targets", "target_validity": 1 - len(hard) / len(prompts)}
    else:
        formulas = [p[len("data_") :].strip() for p in prompts]
        samples = generate_cifs(
            model,
            tokenizer,
            compositions=formulas,
            num_samples=n,
            temperature=float(cfg["temperature"]),
            top_k=cfg["top_k"],
            seed=int(cfg["seed"]),
            progress=True,
        )
        failing = {i for i, s in enumerate(samples) if not s.valid}
        hard = sorted({i // n for i in failing})
        counts = {
            "probed": len(prompts),
            "samples_per_prompt": n,
            "probe_validity": 1 - len(failing) / len(samples),
        }
    rng = random.Random(int(cfg["seed"]))
    hard_set = set(hard)
    passing = [i for i in range(len(prompts)) if i not in hard_set]
    kept = sorted(hard + [i for i in passing if rng.random() < keep])
    counts.update(hard=len(hard), passing_kept=len(kept) - len(hard))
    if not kept:
        raise ValueError(
            "no prompt is left after the hard-prompt probe (hard_keep_passing is 0 and all passed)"
        )
    return dataset.select(kept), counts


# ---------------------------------------------------------------------------- reward, rollouts


def reward_function(reward, log: list):
    """trl's reward-function signature around :class:`CifReward` (whole text = prompt + completion);
    appends each batch's validity rate and mean physics terms to ``log``."""

    def cif_reward(prompts, completions, **kwargs):
        texts = [p + c for p, c in zip(prompts, completions)]
        scores = reward.score(texts, prompts)
        energies = [s.energy_per_atom for s in scores if s.energy_per_atom is not None]
        log.append(
            {
                "n": len(scores),
                "valid": sum(s.valid for s in scores) / len(scores),
                "reward": sum(s.total for s in scores) / len(scores),
                "energy_per_atom": sum(energies) / len(energies) if energies else None,
            }
        )
        return [s.total for s in scores]

    return cif_reward


def rollout_function(tokenizer, cfg: dict):
    """trl's ``rollout_func``: completions sampled as ``hfmat.lm.generate_cifs`` samples them
    (``<bos>`` + prompt, grammar-constrained, static KV cache), one left-padded ``generate`` call."""
    from transformers import LogitsProcessorList

    from hfmat.lm.constraints import CifConstraint, CifLogitsProcessor

    constraint = CifConstraint(tokenizer)
    calls = [0]

    @torch.no_grad()
    def rollout(prompts, trainer):
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        context = int(model.config.n_positions)
        encoded = [
            [tokenizer.bos_token_id] + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts
        ]
        width = max(map(len, encoded))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
        # a fixed stream per call and process: the run is reproducible under its seed
        torch.manual_seed(int(cfg["seed"]) * 1_000_003 + 7919 * calls[0] + trainer.accelerator.process_index)
        calls[0] += 1
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_length=context,
            logits_processor=LogitsProcessorList([CifLogitsProcessor(constraint)]),
            do_sample=True,
            temperature=float(cfg["temperature"]),
            top_k=cfg["top_k"],
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad,
            use_cache=True,
            cache_implementation="static",
        )
        if was_training:
            model.train()
        completions = []
        for row in out[:, width:].tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id) + 1]
            completions.append(row)
        return {"prompt_ids": encoded, "completion_ids": completions, "logprobs": None}

    return rollout


# ------------------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = config(args)
    common.set_threads(cfg["num_threads"])
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from hfmat.hub import load, resolve
    from hfmat.lm.rewards import MATCH_TERMS, CifReward, RewardError, parse_weights

    structures = split_structures(cfg)
    try:
        # the match term compares with every structure of the prompt split (the training data)
        weights = parse_weights(cfg["reward"])
        references = structures if any(t in weights for t in MATCH_TERMS) else None
        reward = CifReward(
            cfg["reward"],
            potential=cfg["potential"],
            fmax=cfg["reward_fmax"],
            steps=cfg["reward_steps"],
            references=references,
        )
    except RewardError as err:
        raise common.ConfigError(f"reward {cfg['reward']!r}: {err}") from None
    if reward.needs_physics:
        from hfmat.physics import load_potential

        reward.potential = load_potential(cfg["potential"])  # a missing extra fails before training
    start_folder = resolve(cfg["init_from"])
    tokenizer = load(AutoTokenizer, start_folder)
    model = load(AutoModelForCausalLM, start_folder)
    if model.config.model_type != "gpt2":
        raise ValueError(f"init_from {cfg['init_from']}: a GPT-2 is needed, got {model.config.model_type}")
    dataset = prompt_dataset(cfg, structures)
    probe = None
    if cfg["hard_prompts_from"] == "targets":
        dataset, probe = hard_prompts(dataset, model, tokenizer, cfg, structures)
        print(
            f"hard prompts: {probe['hard']} of {probe['probed']} whose own structure fails a validity "
            f"check; training on those and {probe['passing_kept']} others"
        )
    elif cfg["hard_prompt_samples"]:
        dataset, probe = hard_prompts(dataset, model, tokenizer, cfg)
        print(
            f"hard prompts: {probe['hard']} of {probe['probed']} failed a probe sample (validity "
            f"{probe['probe_validity']:.1%}); training on those and {probe['passing_kept']} others"
        )

    use_cpu = not torch.cuda.is_available()
    batch = int(cfg["num_generations"]) * int(cfg["prompts_per_step"])
    grpo = GRPOConfig(
        output_dir=str(cfg["output_dir"]),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=int(cfg["gradient_accumulation_steps"]),
        num_generations=int(cfg["num_generations"]),
        max_completion_length=int(model.config.n_positions),
        learning_rate=float(cfg["lr"]),
        lr_scheduler_type="constant",
        beta=float(cfg["beta"]),
        epsilon=float(cfg["epsilon"]),
        max_grad_norm=float(cfg["max_grad_norm"]),
        temperature=float(cfg["temperature"]),
        top_k=int(cfg["top_k"] or 0),
        max_steps=int(cfg["max_steps"]),
        logging_steps=int(cfg["logging_steps"]),
        save_strategy="no",
        report_to="none",
        seed=int(cfg["seed"]),
        use_cpu=use_cpu,
        bf16=False,
        disable_dropout=True,
        remove_unused_columns=False,
        # trl turns it on by default; for a model this small recomputing activations only costs time
        gradient_checkpointing=False,
    )
    # trl loads the reference model for the KL penalty from config._name_or_path
    model.config._name_or_path = str(kl_reference(cfg, start_folder, tokenizer))
    batches: list[dict] = []
    sft = sft_batches(cfg, tokenizer, int(model.config.n_positions)) if cfg["sft_weight"] else None
    trainer = trainer_class(GRPOTrainer, sft, float(cfg["sft_weight"]))(
        model=model,
        reward_funcs=[reward_function(reward, batches)],
        args=grpo,
        train_dataset=dataset,
        processing_class=tokenizer,
        rollout_func=rollout_function(tokenizer, cfg),
    )
    for m in (trainer.model, trainer.ref_model):
        if m is not None:
            positions_from_mask(m)
    started = time.perf_counter()
    if cfg["max_minutes"]:
        trainer.add_callback(_time_limit(float(cfg["max_minutes"]) * 60, started))
    result = trainer.train()
    wall = time.perf_counter() - started
    history = [h for h in trainer.state.log_history if "reward" in h]
    first, last = batches[: max(1, len(batches) // 4)], batches[-max(1, len(batches) // 4) :]

    def mean(rows, key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    summary = {
        "step": trainer.state.global_step,
        "total_steps": int(cfg["max_steps"]),
        "train_loss": result.training_loss,
        "wall_s": wall,
        "prompts": len(dataset),
        "hard_prompt_probe": probe,
        "completions_scored": sum(r["n"] for r in batches),
        "reward_first_quarter": mean(first, "reward"),
        "reward_last_quarter": mean(last, "reward"),
        "validity_first_quarter": mean(first, "valid"),
        "validity_last_quarter": mean(last, "valid"),
        "energy_first_quarter": mean(first, "energy_per_atom"),
        "energy_last_quarter": mean(last, "energy_per_atom"),
        "kl_last": history[-1].get("kl") if history else None,
        "kl_first": history[0].get("kl") if history else None,
        "sft_loss_first": history[0].get("sft_loss") if history else None,
        "sft_loss_last": history[-1].get("sft_loss") if history else None,
        "sft_rows": sft.rows if sft else None,
        "relaxations": reward.stats["relaxed"],
        "num_processes": trainer.accelerator.num_processes,
        "n_params": sum(p.numel() for p in model.parameters()),
        "hardware": (
            torch.cuda.get_device_name(0)
            if not use_cpu
            else f"CPU, {torch.get_num_threads()} torch thread(s) per process, {os.cpu_count()} cores on the machine"
        ),
    }
    final_dir = Path(cfg["final_dir"] or Path(cfg["output_dir"]) / "final")
    if trainer.accelerator.is_main_process:
        write_final(
            trainer.accelerator.unwrap_model(trainer.model), tokenizer, cfg, summary, final_dir, history
        )
        print(f"final model written to {final_dir}")
        print(json.dumps({k: v for k, v in summary.items() if k != "hardware"}, indent=1))
    trainer.accelerator.wait_for_everyone()
    return summary


class SftBatches:
    """Endless shuffled batches of the prompt split's CIFs, tokenized as the supervised script
    tokenizes them (canonical CIF, ``featurize_lm``), collated for a causal-LM loss; ``rows`` is
    how many CIFs there are to draw from."""

    def __init__(self, data, collator, batch_size: int, seed: int):
        self.data, self.collator, self.batch_size = data, collator, batch_size
        self.rows = len(data)
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []

    def __next__(self) -> dict:
        if len(self.order) < self.batch_size:
            self.order += torch.randperm(self.rows, generator=self.generator).tolist()
        take, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return self.collator([self.data[i] for i in take])


def sft_batches(cfg: dict, tokenizer, max_length: int) -> SftBatches:
    """The supervised term's data: every CIF of ``dataset``:``split`` that fits ``max_length``."""
    from hfmat.data import CifLMCollator, featurize_lm, load_crystal_dataset

    split = load_crystal_dataset(cfg["dataset"], data_dir=cfg["data_dir"], splits=[cfg["split"]])[
        cfg["split"]
    ]
    data = featurize_lm(split, tokenizer, max_length=max_length).select_columns(["input_ids"])
    if len(data) == 0:
        raise common.ConfigError(
            f"sft_weight: no CIF of {cfg['dataset']}:{cfg['split']} fits {max_length} tokens"
        )
    batch_size = min(int(cfg["sft_batch_size"]), len(data))
    return SftBatches(data, CifLMCollator(tokenizer), batch_size, int(cfg["seed"]))


def trainer_class(base, sft: SftBatches | None, weight: float):
    """``base`` (trl's GRPOTrainer) as is, or with ``weight`` times the causal-LM loss of one
    :class:`SftBatches` batch added to each step's loss and logged as ``sft_loss``."""
    if sft is None:
        return base

    class GRPOWithSft(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            batch = {k: v.to(loss.device) for k, v in next(sft).items()}
            lm_loss = model(**batch).loss
            self._metrics["train"]["sft_loss"].append(lm_loss.item())
            return loss + weight * lm_loss

    return GRPOWithSft


def kl_reference(cfg: dict, start_folder, tokenizer):
    """The folder of the KL penalty's reference model: ``ref_model`` (a GPT-2 whose tokenizer is the
    start model's, so the two score the same token ids) or the start folder."""
    from transformers import AutoConfig, AutoTokenizer

    from hfmat.hub import load, resolve

    if not cfg["ref_model"]:
        return start_folder
    try:
        folder = resolve(cfg["ref_model"])
        ref_config = load(AutoConfig, folder)
        ref_vocab = load(AutoTokenizer, folder).get_vocab()
    except (OSError, ValueError) as err:
        raise common.ConfigError(f"ref_model {cfg['ref_model']!r}: {err}") from None
    if ref_config.model_type != "gpt2":
        raise common.ConfigError(
            f"ref_model {cfg['ref_model']!r}: a GPT-2 is needed, got {ref_config.model_type}"
        )
    if ref_vocab != tokenizer.get_vocab():
        raise common.ConfigError(
            f"ref_model {cfg['ref_model']!r}: its tokenizer differs from init_from's {cfg['init_from']!r}, "
            "so its log-probabilities do not score the same tokens"
        )
    return folder


def positions_from_mask(model) -> None:
    """Make ``model``'s forward take its positions from the attention mask when it is given none.

    trl left-pads the prompts of a batch and scores completions with ``model(input_ids,
    attention_mask)``; GPT-2 then numbers positions from the first column, pads included, so a
    shorter prompt's tokens sit at shifted positions (log-probabilities of text the model never saw,
    and a KL to the reference model in the hundreds). ``generate`` passes positions itself and is
    left alone. A forward pre-hook: nothing is saved with the weights."""

    def hook(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None and mask is not None and kwargs.get("past_key_values") is None:
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return args, kwargs

    model.register_forward_pre_hook(hook, with_kwargs=True)


def _time_limit(seconds: float, started: float):
    """A callback that ends training after the step during which ``seconds`` have passed."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - started > seconds:
                control.should_training_stop = True
            return control

    return TimeLimit()


def write_final(model, tokenizer, cfg: dict, summary: dict, final_dir: Path, history: list) -> None:
    """The Hub-ready folder: a plain GPT-2 (safetensors), its tokenizer, generation config, the
    training record (with the supervised stages before it) and the model card."""
    from train_cif_lm import generation_config_for

    from hfmat.tokenization import save_tokenizer

    final_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = generation_config_for(model, tokenizer)  # as train_cif_lm.py saves it
    if cfg["generation_temperature"] is not None:
        model.generation_config.temperature = float(cfg["generation_temperature"])
    model.config._name_or_path = cfg["model_name"]
    model.save_pretrained(final_dir, safe_serialization=True)
    tokenizer.model_max_length = model.config.n_positions
    save_tokenizer(final_dir, tokenizer=tokenizer, card=False)
    keep = [
        {k: h[k] for k in ("step", "reward", "reward_std", "kl", "sft_loss", "loss") if k in h}
        for h in history
    ]
    common.write_training_summary(final_dir, cfg, summary, method="grpo", log=keep)
    write_card(final_dir)


def write_card(folder: Path) -> Path:
    """README.md of an RL fine-tuned CIF LM: hfmat.lm.card.write_model_card reads the record's
    ``method`` and writes the GRPO training section."""
    from hfmat.lm.card import write_model_card

    return write_model_card(folder)


if __name__ == "__main__":
    common.run_main(main)
