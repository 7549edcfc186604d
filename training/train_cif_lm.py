"""Train a GPT-2 that writes canonical CIF files (CrystaLLM's recipe on the Hugging Face stack).

    accelerate launch training/train_cif_lm.py --config training/configs/cif_lm_tiny.yaml
    torchrun --nproc_per_node 2 training/train_cif_lm.py --config training/configs/cif_lm_tiny.yaml
    python training/train_cif_lm.py --config ... --resume latest      # continue where it stopped

The result is a plain ``GPT2LMHeadModel`` folder (config.json, generation_config.json,
model.safetensors, tokenizer files, README.md model card) at ``<output_dir>/final`` that loads
with ``AutoModelForCausalLM.from_pretrained`` and no hfmat import.
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

from common import (  # noqa: E402
    StepTimer,
    TrainingProgress,
    build_optimizer_and_scheduler,
    cosine_total_steps,
    epoch_batches,
    flat_hparams,
    load_config,
    make_accelerator,
    merge_overrides,
    resume_from_checkpoint,
    save_checkpoint,
    set_threads,
)

#: Every key a CIF-LM config may set, with its default.
DEFAULTS: dict = {
    # data
    "dataset": "perov_5",  # a load_crystal_dataset source (name or folder)
    "data_dir": None,  # folder holding the source's CSV files (None: the loader's default)
    "train_split": "train",
    "eval_split": None,  # None: hold out `eval_holdout` rows of the training split
    "eval_holdout": 300,
    "max_train_samples": None,
    "max_eval_samples": None,
    "tokenizer": "tokenizer",  # folder or repo id of the CIF tokenizer
    # model
    "init_from": None,  # folder or repo id of a GPT-2 checkpoint to fine-tune
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "n_positions": 512,
    "dropout": 0.1,
    # optimisation
    "lr": 1e-3,
    "min_lr_ratio": 0.0,
    "weight_decay": 0.1,
    "betas": [0.9, 0.95],
    "warmup_steps": 100,
    "epochs": 10,
    "max_steps": None,  # overrides epochs when set
    "per_device_batch_size": 16,
    "eval_batch_size": 32,
    "gradient_accumulation_steps": 1,
    "max_grad_norm": 1.0,
    "mixed_precision": "no",  # "no" or "bf16"
    "seed": 1337,
    # bookkeeping
    "output_dir": "runs/cif_lm",
    "final_dir": None,  # None: <output_dir>/final
    "log_every": 10,
    "eval_every": 200,
    "save_every": 500,
    "total_limit": 3,
    "num_threads": None,
    "max_minutes": None,  # stop (and finish) after this much wall time
    "model_name": "cif-gpt2",
    "dataset_note": "",
    "description": None,  # model card text (None: generated)
    "limitations": None,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML or JSON config (training/configs/cif_lm_*.yaml)")
    p.add_argument("--init-from", default=None, help="GPT-2 folder or repo id to fine-tune from")
    p.add_argument("--resume", default=None, help="checkpoint folder, or 'latest' under output_dir")
    p.add_argument("--output-dir", default=None)
    p.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        help="save a checkpoint and exit after this many optimizer steps (the schedule is unchanged)",
    )
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------- data


def build_datasets(cfg: dict, tokenizer):
    """Tokenized train/eval datasets (``input_ids`` columns) and the causal-LM collator.

    The whole training split is featurized first (canonical CIF, tokens; cached by ``datasets``)
    and then split, so the held-out rows depend only on ``seed`` and ``eval_holdout``. Rows the
    featurization skips (too long for ``n_positions``, unreadable) are counted and printed.
    """
    from hfmat.data import CifLMCollator, featurize_lm, load_crystal_dataset

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
    if cfg["eval_split"]:
        evalset = featurize(ds[cfg["eval_split"]], cfg["eval_split"])
    else:
        parts = train.train_test_split(
            test_size=int(cfg["eval_holdout"]), seed=int(cfg["seed"]), shuffle=True
        )
        train, evalset = parts["train"], parts["test"]
    if cfg["max_train_samples"]:
        train = train.select(range(min(len(train), int(cfg["max_train_samples"]))))
    if cfg["max_eval_samples"]:
        evalset = evalset.select(range(min(len(evalset), int(cfg["max_eval_samples"]))))
    keep = ["input_ids"]
    train = train.select_columns(keep)
    evalset = evalset.select_columns(keep)
    return train, evalset, CifLMCollator(tokenizer), skipped


# ------------------------------------------------------------------------------------ model


def build_model(cfg: dict, tokenizer):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    if cfg["init_from"]:
        model = AutoModelForCausalLM.from_pretrained(cfg["init_from"])
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
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_length=model.config.n_positions,
        do_sample=True,
        temperature=1.0,
        top_k=10,
    )


# ------------------------------------------------------------------------------------- loop


@torch.no_grad()
def evaluate(model, loader, accelerator) -> float:
    """Mean next-token loss (nats per predicted token) over ``loader``, across processes."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
        n = (batch["labels"][:, 1:] != -100).sum()
        pair = torch.stack([out.loss.double() * n, n.double()])
        total += accelerator.reduce(pair, reduction="sum")
    model.train()
    return float(total[0] / total[1].clamp(min=1))


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, DEFAULTS)
    cfg = merge_overrides(cfg, args.set)
    if args.init_from:
        cfg["init_from"] = args.init_from
    if args.output_dir:
        cfg["output_dir"] = args.output_dir
    set_threads(cfg["num_threads"])

    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    output_dir = Path(cfg["output_dir"])
    accelerator = make_accelerator(
        output_dir,
        gradient_accumulation_steps=int(cfg["gradient_accumulation_steps"]),
        mixed_precision=cfg["mixed_precision"],
        seed=int(cfg["seed"]),
        total_limit=cfg["total_limit"],
    )
    tokenizer = AutoTokenizer.from_pretrained(cfg["tokenizer"])
    with accelerator.main_process_first():
        train_ds, eval_ds, collator, skipped = build_datasets(cfg, tokenizer)
    for split, stats in skipped.items():
        for part in stats.values() if isinstance(stats, dict) else [stats]:
            accelerator.print(
                f"featurize {split}: {part.rows_in} rows in, {part.rows_kept} kept, {part.num_skipped} skipped"
                + (f" ({dict(list(part.skipped.items())[:5])})" if part.skipped else "")
            )
    model = build_model(cfg, tokenizer)

    train_loader = torch.utils.data.DataLoader(
        train_ds,
        batch_size=int(cfg["per_device_batch_size"]),
        shuffle=True,
        collate_fn=collator,
        drop_last=True,
        # its own generator: starting an iterator (as a resumed run does mid-epoch) then draws
        # nothing from the global RNG, so dropout after a resume matches an uninterrupted run
        generator=torch.Generator().manual_seed(int(cfg["seed"])),
    )
    eval_loader = torch.utils.data.DataLoader(
        eval_ds, batch_size=int(cfg["eval_batch_size"]), collate_fn=collator
    )
    accum = int(cfg["gradient_accumulation_steps"])
    train_loader, eval_loader = accelerator.prepare(train_loader, eval_loader)
    batches_per_epoch = len(train_loader)  # per process
    total_steps = (
        int(cfg["max_steps"])
        if cfg["max_steps"]
        else cosine_total_steps(batches_per_epoch, cfg["epochs"], accum)
    )
    optimizer, scheduler = build_optimizer_and_scheduler(
        model,
        lr=float(cfg["lr"]),
        warmup_steps=int(cfg["warmup_steps"]),
        total_steps=total_steps,
        weight_decay=float(cfg["weight_decay"]),
        betas=tuple(cfg["betas"]),
        num_processes=accelerator.num_processes,
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    resumed = resume_from_checkpoint(accelerator, args.resume, output_dir) if args.resume else None
    if resumed:
        accelerator.print(f"resumed from {resumed} at step {progress.step} (epoch {progress.epoch})")

    n_params = sum(p.numel() for p in accelerator.unwrap_model(model).parameters())
    accelerator.init_trackers("cif_lm", config=flat_hparams({**cfg, "n_params": n_params}))
    accelerator.print(
        f"{n_params / 1e6:.2f}M parameters, {len(train_ds)} train / {len(eval_ds)} eval CIFs, "
        f"{batches_per_epoch} batches per epoch per process, {total_steps} optimizer steps, "
        f"{accelerator.num_processes} process(es) on {accelerator.device}"
    )

    timer = StepTimer(cfg["max_minutes"])
    bar = tqdm(
        total=total_steps, initial=progress.step, disable=not accelerator.is_local_main_process, desc="train"
    )
    last_loss = float("nan")
    last_eval = None
    log_loss, log_n = 0.0, 0
    stop_reason = "done"
    model.train()
    while progress.step < total_steps:
        loader = epoch_batches(train_loader, progress.epoch, progress.batch_in_epoch)
        for batch in loader:
            with accelerator.accumulate(model):
                out = model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    labels=batch["labels"],
                )
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and cfg["max_grad_norm"]:
                    accelerator.clip_grad_norm_(model.parameters(), float(cfg["max_grad_norm"]))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            progress.batch_in_epoch += 1
            ntok = accelerator.reduce(batch["attention_mask"].sum(), reduction="sum").item()
            progress.tokens += int(ntok)
            timer.add(ntok)
            log_loss += out.loss.item()
            log_n += 1
            if not accelerator.sync_gradients:
                continue
            progress.step += 1
            last_loss = accelerator.reduce(out.loss.detach(), reduction="mean").item()
            bar.update(1)
            if progress.step % int(cfg["log_every"]) == 0 or progress.step == total_steps:
                metrics = {
                    "train/loss": log_loss / max(log_n, 1),
                    "train/lr": scheduler.get_last_lr()[0],
                    "train/tokens_per_s": timer.rate,
                    "train/epoch": progress.epoch + progress.batch_in_epoch / batches_per_epoch,
                }
                accelerator.log(metrics, step=progress.step)
                bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", tok_s=f"{timer.rate:.0f}")
                log_loss, log_n = 0.0, 0
            if progress.step % int(cfg["eval_every"]) == 0 or progress.step == total_steps:
                last_eval = evaluate(model, eval_loader, accelerator)
                accelerator.log({"eval/loss": last_eval}, step=progress.step)
                accelerator.print(f"step {progress.step}: eval loss {last_eval:.4f}")
            stopping = args.stop_after_steps is not None and progress.step >= args.stop_after_steps
            out_of_time = timer.out_of_time()
            if progress.step % int(cfg["save_every"]) == 0 or stopping or out_of_time:
                save_checkpoint(accelerator)
            if stopping:
                stop_reason = "stopped"
                break
            if out_of_time:
                stop_reason = "time"
                break
            if progress.step >= total_steps:
                break
        else:  # the epoch ran out
            progress.epoch += 1
            progress.batch_in_epoch = 0
            continue
        if stop_reason != "done" or progress.step >= total_steps:
            break
    bar.close()

    summary = {
        "step": progress.step,
        "total_steps": total_steps,
        "epochs": progress.epoch + progress.batch_in_epoch / batches_per_epoch,
        "train_loss": last_loss,
        "eval_loss": last_eval,
        "tokens": progress.tokens,
        "tokens_per_s": timer.rate,
        "wall_s": timer.elapsed,
        "n_params": n_params,
        "num_processes": accelerator.num_processes,
        "stop_reason": stop_reason,
        "hardware": (
            torch.cuda.get_device_name(accelerator.device)
            if accelerator.device.type == "cuda"
            else f"CPU, {torch.get_num_threads()} torch thread(s) per process, {os.cpu_count()} cores on the machine"
        ),
    }
    if stop_reason == "stopped":
        accelerator.end_training()
        return summary
    if last_eval is None or progress.step % int(cfg["eval_every"]) != 0:
        summary["eval_loss"] = last_eval = evaluate(model, eval_loader, accelerator)
    final_dir = Path(cfg["final_dir"] or output_dir / "final")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_final(accelerator.unwrap_model(model), tokenizer, cfg, summary, final_dir)
        accelerator.print(f"final model written to {final_dir}")
    accelerator.end_training()
    accelerator.print(json.dumps(summary, indent=1))
    return summary


def write_final(model, tokenizer, cfg: dict, summary: dict, final_dir: Path) -> None:
    """The Hub-ready folder: config, generation_config, model.safetensors, tokenizer, README.md."""
    from hfmat.lm.card import write_model_card

    final_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = generation_config_for(model, tokenizer)
    model.save_pretrained(final_dir, safe_serialization=True)
    tokenizer.save_pretrained(final_dir)
    (final_dir / "training_summary.json").write_text(
        json.dumps({"config": cfg, "summary": summary, "date": time.strftime("%Y-%m-%d")}, indent=1) + "\n"
    )
    write_model_card(final_dir)


if __name__ == "__main__":
    main()
