"""Train a GPT-2 that writes canonical CIF files (CrystaLLM's recipe on the Hugging Face stack).

    accelerate launch training/train_cif_lm.py --config training/configs/cif_lm_tiny.yaml
    torchrun --nproc_per_node 2 training/train_cif_lm.py --config training/configs/cif_lm_tiny.yaml
    python training/train_cif_lm.py --config ... --resume latest      # continue where it stopped

The result is a plain ``GPT2LMHeadModel`` folder (config.json, generation_config.json,
model.safetensors, tokenizer files, README.md model card) at ``<output_dir>/final`` that loads
with ``AutoModelForCausalLM.from_pretrained`` and no hfmat import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (training/common/: what both training scripts share)

#: Every key a CIF-LM config may set, with its default: the keys of every script (common.DEFAULTS:
#: data, optimisation, bookkeeping), this script's values for some of them, then its own keys.
DEFAULTS: dict = {
    **common.DEFAULTS,
    "weight_decay": 0.1,
    "betas": [0.9, 0.95],
    "per_device_batch_size": 16,
    "eval_batch_size": 32,
    "seed": 1337,
    "output_dir": "runs/cif_lm",
    "model_name": "cif-gpt2",
    # data
    # several sources in one run, instead of `dataset`/`train_split`: a list of
    # {dataset, split, data_dir, name, repeat} (hfmat.data.sources), concatenated; the eval rows
    # (`eval_holdout` in all) are drawn from every source in proportion
    "datasets": None,
    "tokenizer": "tokenizer",  # folder or repo id of the CIF tokenizer
    # model
    "init_from": None,  # folder or repo id of a GPT-2 checkpoint to fine-tune
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "n_positions": 512,
    "dropout": 0.1,
    # model card
    "description": None,  # model card text (None: generated)
    "limitations": None,
}


def parse_args(argv=None):
    p = common.training_arguments(
        __doc__,
        config_help="YAML or JSON config (training/configs/cif_lm_*.yaml)",
        init_from_help="GPT-2 folder or repo id to fine-tune from",
    )
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------- data


def build_datasets(cfg: dict, tokenizer):
    """Tokenized train/eval datasets (``input_ids`` columns) and the causal-LM collator.

    The whole training split is featurized first (canonical CIF, tokens; cached by ``datasets``)
    and then split, so the held-out rows depend only on ``seed`` and ``eval_holdout``. Rows the
    featurization skips (too long for ``n_positions``, unreadable) are counted and printed; ``scope``
    is what the training rows hold (``common.data_scope``).
    """
    from hfmat.data import CifLMCollator, featurize_lm, load_crystal_dataset

    if cfg["datasets"]:
        return build_mixed_datasets(cfg, tokenizer)
    splits = [cfg["train_split"]] + ([cfg["eval_split"]] if cfg["eval_split"] else [])
    ds = load_crystal_dataset(cfg["dataset"], data_dir=cfg["data_dir"], splits=splits)
    skipped = {}

    def featurize(data, name):
        out, stats = featurize_lm(data, tokenizer, max_length=int(cfg["n_positions"]), return_stats=True)
        skipped[name] = stats
        return out

    train = ds[cfg["train_split"]]
    if cfg["max_train_samples"] and not cfg["eval_split"]:
        # a small run featurizes only the rows it uses
        wanted = int(cfg["max_train_samples"]) + int(cfg["eval_holdout"])
        train = train.select(range(min(len(train), wanted)))
    train = featurize(train, cfg["train_split"])
    evalset = featurize(ds[cfg["eval_split"]], cfg["eval_split"]) if cfg["eval_split"] else None
    train, evalset = common.holdout_and_limit(train, evalset, cfg)
    keep = ["input_ids"]
    scope = common.data_scope(train)  # what the run trains on, before the columns go
    train = train.select_columns(keep)
    evalset = evalset.select_columns(keep)
    return train, evalset, CifLMCollator(tokenizer), skipped, scope


def build_mixed_datasets(cfg: dict, tokenizer):
    """``build_datasets`` for a config with ``datasets`` (several sources): the sources concatenated
    (``hfmat.data.sources``) and featurized together, ``eval_holdout`` rows held out from every
    source in proportion (under ``seed``), then each source's ``repeat``. ``scope`` also counts each
    source's training and eval crystals (``sources``: label -> counts, before ``repeat``)."""
    from hfmat.data import CifLMCollator, featurize_lm

    stats = {}

    def featurize(data):
        out, stats["sources"] = featurize_lm(
            data, tokenizer, max_length=int(cfg["n_positions"]), return_stats=True
        )
        return out

    train, evalset, scope = common.split_sources(cfg, prepare=featurize)
    keep = ["input_ids"]
    return (
        train.select_columns(keep),
        evalset.select_columns(keep),
        CifLMCollator(tokenizer),
        stats,
        scope,
    )


# ------------------------------------------------------------------------------------ model


def build_model(cfg: dict, tokenizer):
    """A fresh GPT-2 of the config's size, or the checkpoint ``init_from`` (a folder or a repo id,
    loaded through ``hfmat.hub.load``: a repo id that is not cached offline, a truncated weights file
    or a folder saved by incompatible versions is a one-line ``hfmat.hub.HubError``)."""
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    from hfmat.hub import load

    if cfg["init_from"]:
        model = load(AutoModelForCausalLM, cfg["init_from"])
        if model.config.vocab_size != len(tokenizer):
            raise ValueError(
                f"--init-from {cfg['init_from']}: vocabulary of {model.config.vocab_size} tokens does not "
                f"match the tokenizer's {len(tokenizer)}"
            )
        model.train()
        return model
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=int(cfg["n_positions"]),
        n_embd=int(cfg["n_embd"]),
        n_layer=int(cfg["n_layer"]),
        n_head=int(cfg["n_head"]),
        resid_pdrop=float(cfg["dropout"]),
        embd_pdrop=float(cfg["dropout"]),
        attn_pdrop=float(cfg["dropout"]),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def generation_config_for(model, tokenizer):
    """Sampling defaults saved with the model. No ``max_length``: a saved one makes transformers warn
    on every ``generate(max_new_tokens=...)`` call (the way to bound a generation); the model's
    length is ``config.n_positions`` and the tokenizer's ``model_max_length``."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_k=10,
    )


# ------------------------------------------------------------------------------------- loop


def lm_loss(model, batch):
    """Mean next-token cross-entropy of a collated batch (pad positions are masked by the labels)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    return out.loss


@torch.no_grad()
def evaluate(model, loader, accelerator) -> float:
    """Mean next-token loss (nats per predicted token) over ``loader``, across processes."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        loss = lm_loss(model, batch)
        n = (batch["labels"][:, 1:] != -100).sum()
        pair = torch.stack([loss.double() * n, n.double()])
        total += accelerator.reduce(pair, reduction="sum")
    model.train()
    return float(total[0] / total[1].clamp(min=1))


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = common.config_from_args(args, DEFAULTS)
    common.set_threads(cfg["num_threads"])
    if cfg["datasets"]:  # several sources: `dataset` names them all (the record, the card, hfmat.scope)
        cfg["dataset"] = common.sources_label(cfg)

    from transformers import AutoTokenizer

    accelerator = common.accelerator_for(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg["tokenizer"])
    with accelerator.main_process_first():
        train_ds, eval_ds, collator, skipped, scope = build_datasets(cfg, tokenizer)
    for split, stats in skipped.items():
        for part in stats.values() if isinstance(stats, dict) else [stats]:
            accelerator.print(
                f"featurize {split}: {part.rows_in} rows in, {part.rows_kept} kept, {part.num_skipped} skipped"
                + (f" ({dict(list(part.skipped.items())[:5])})" if part.skipped else "")
            )
    model = build_model(cfg, tokenizer)

    # the training loader has its own generator: starting an iterator (as a resumed run does
    # mid-epoch) then draws nothing from the global RNG, so dropout after a resume matches an
    # uninterrupted run
    train_loader, eval_loader = common.dataloaders(
        train_ds, eval_ds, collator, cfg, generator=torch.Generator().manual_seed(int(cfg["seed"]))
    )
    train_loader, eval_loader = accelerator.prepare(train_loader, eval_loader)
    batches_per_epoch = len(train_loader)  # per process
    total_steps = common.total_steps_for(cfg, batches_per_epoch)
    optimizer, scheduler = common.optimizer_and_scheduler_for(
        model, cfg, total_steps, accelerator.num_processes
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    progress, _ = common.start_or_resume(accelerator, args.resume, cfg["output_dir"])
    data = f"{len(train_ds)} train / {len(eval_ds)} eval CIFs"
    n_params = common.start_trackers(accelerator, model, cfg, "cif_lm", data, batches_per_epoch, total_steps)

    loop = common.TrainingLoop(
        accelerator, cfg, model, optimizer, scheduler, train_loader, progress, total_steps, batches_per_epoch
    )

    def log(means: dict) -> dict:
        metrics = {
            "train/loss": means["loss"],
            "train/lr": scheduler.get_last_lr()[0],
            "train/tokens_per_s": loop.timer.rate,
            "train/epoch": loop.epochs,
        }
        accelerator.log(metrics, step=progress.step)
        return {"loss": f"{metrics['train/loss']:.3f}", "tok_s": f"{loop.timer.rate:.0f}"}

    def evaluate_and_report() -> float:
        loss = evaluate(model, eval_loader, accelerator)
        accelerator.log({"eval/loss": loss}, step=progress.step)
        accelerator.print(f"step {progress.step}: eval loss {loss:.4f}")
        return loss

    stop_reason = loop.run(
        loss=lambda batch: {"loss": lm_loss(model, batch)},
        count=lambda batch: batch["attention_mask"].sum(),  # tokens
        evaluate=evaluate_and_report,
        log=log,
        stop_after_steps=args.stop_after_steps,
    )

    summary = {
        **loop.summary(),  # step, total_steps, epochs, train_loss
        "eval_loss": loop.last_eval,
        "tokens": progress.tokens,
        "tokens_per_s": loop.timer.rate,
        "wall_s": loop.timer.elapsed,
        "n_params": n_params,
        "num_processes": accelerator.num_processes,
        "stop_reason": stop_reason,
        "train_crystals": len(train_ds),
        "eval_crystals": len(eval_ds),
        "hardware": (
            torch.cuda.get_device_name(accelerator.device)
            if accelerator.device.type == "cuda"
            else f"CPU, {torch.get_num_threads()} torch thread(s) per process, {os.cpu_count()} cores on the machine"
        ),
    }
    if stop_reason == "stopped":  # a checkpoint to resume from, no final folder
        return common.finish(accelerator, summary)
    if loop.needs_final_eval:
        summary["eval_loss"] = evaluate(model, eval_loader, accelerator)
    final_dir = common.final_dir_for(cfg)

    def write():
        write_final(accelerator.unwrap_model(model), tokenizer, cfg, summary, final_dir, data=scope)
        accelerator.print(f"final model written to {final_dir}")

    return common.finish(accelerator, summary, write)


def write_final(
    model, tokenizer, cfg: dict, summary: dict, final_dir: Path, data: dict | None = None
) -> None:
    """The Hub-ready folder: config, generation_config, model.safetensors, tokenizer, the training
    summary (with ``data``, the elements and cell sizes trained on: ``common.data_scope``), README.md."""
    from hfmat.lm.card import write_model_card
    from hfmat.tokenization import save_tokenizer

    final_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = generation_config_for(model, tokenizer)
    model.save_pretrained(final_dir, safe_serialization=True)
    tokenizer.model_max_length = model.config.n_positions  # the model's length, not the tokenizer's default
    save_tokenizer(final_dir, tokenizer=tokenizer, card=False)  # tokenizer_class pinned
    common.write_training_summary(final_dir, cfg, summary, **({"data": data} if data else {}))
    write_model_card(final_dir)


if __name__ == "__main__":
    common.run_main(main)
