"""Train Crystal CLIP (hfmat.text) with Accelerate: a text encoder (a small BertModel from scratch)
and a crystal encoder (hfmat's denoiser graph network at t=0) aligned by a symmetric InfoNCE loss.

    accelerate launch training/train_crystal_clip.py --config training/configs/crystal_clip_tiny.yaml
    OMP_NUM_THREADS=1 accelerate launch training/train_crystal_clip.py \
        --config training/configs/crystal_clip_perov5_cpu.yaml

Data: the training split's rows get their descriptions (hfmat.data.descriptions) and graphs; each
training pair takes one of ``text_columns`` at random per crystal. The prose tokenizer is trained on
the training rows' texts only (or loaded from ``tokenizer``). The eval loss and eval retrieval are
measured on ``eval_holdout`` rows held out of the training split; at the end, retrieval among
``num_candidates`` is measured on ``test_split`` (never trained on), per text column, with chance
beside it. ``text_columns`` may also name ``text_structure`` (hfmat.text.data: the crystal
system, space group and structure type without the formula).

Hard negatives: with ``hard_negative_fraction`` > 0 the training batches come from
hfmat.text.sampling.HardNegativeBatchSampler: rows that share ``hard_negative_key`` (a column; the
reduced formula by default) are put in the same batch, up to that fraction of every batch, so the
loss must tell two structures of one composition apart. 0 (the default) keeps shuffled batches.

Several sources: ``datasets:`` (a list of ``{dataset, split, data_dir, name, repeat}``,
hfmat.data.sources, as in train_diffusion.py) instead of ``dataset``/``train_split``. The sources'
property columns are kept (the union; a source's sentences name its own properties),
``eval_holdout`` rows are held out of every source in proportion, the tokenizer is trained on all
of them, and ``test_split`` is each source's split of that name: retrieval is reported on all of
them together (``test``, blocks of random candidates across the sources) and on each alone
(``test_by_source``).

The run ends in a folder (``<output_dir>/final`` unless ``final_dir`` is set): text_encoder/,
tokenizer/, crystal_encoder/, clip_config.json, training_summary.json and the card.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (training/common/: what the training scripts share)

DEFAULTS: dict = {
    **common.DEFAULTS,
    "train_split": "val",
    "test_split": "test",
    "text_columns": ["text_composition", "text_system", "text_sentence"],
    "properties": None,  # property columns the sentences name (None: every known one present)
    "num_proc": None,
    # tokenizer
    "tokenizer": None,  # a folder to load; None: train one on the training texts
    "tokenizer_vocab_size": 1000,
    "max_text_length": 128,
    # text encoder (BertModel)
    "text_hidden_size": 64,
    "text_layers": 2,
    "text_heads": 2,
    "text_intermediate_size": 128,
    # crystal encoder (CrystalDenoiser graph network)
    "crystal_hidden_dim": 64,
    "crystal_layers": 3,
    "num_frequencies": 8,
    "time_embed_dim": 32,
    "max_atoms": 24,
    "logit_scale_init": math.log(1 / 0.07),
    "num_candidates": 100,
    # hard negatives (hfmat.text.sampling): 0 = shuffled batches
    "hard_negative_fraction": 0.0,
    "hard_negative_key": "text_composition",
    "weight_decay": 0.01,
    # several sources in one run, instead of `dataset`/`train_split`: a list of
    # {dataset, split, data_dir, name, repeat} (hfmat.data.sources), as in train_diffusion.py
    "datasets": None,
    "output_dir": "runs/crystal_clip",
    "model_name": "crystal-clip",
}


def parse_args(argv=None):
    p = common.training_arguments(
        __doc__,
        config_help="YAML/JSON config (training/configs/crystal_clip_*.yaml)",
        init_from_help="not used by this script",
    )
    return p.parse_args(argv)


#: Where a run keeps its prose tokenizer (under output_dir), so that --resume uses the same one:
#: WordPiece training is not guaranteed to give the same vocabulary twice.
RUN_TOKENIZER = "tokenizer"


def prose_tokenizer_for(cfg: dict, train_ds, resume: bool = False):
    """The run's prose tokenizer: ``tokenizer`` when the config names one; on ``resume`` the one the
    first start saved in ``<output_dir>/tokenizer``; else trained on the training rows' texts."""
    from transformers import AutoTokenizer

    from hfmat.data.descriptions import TEXT_COLUMNS
    from hfmat.text.tokenizer import train_prose_tokenizer

    saved = Path(cfg["output_dir"]) / RUN_TOKENIZER
    if cfg["tokenizer"]:
        tokenizer = AutoTokenizer.from_pretrained(cfg["tokenizer"])
    elif resume:
        if not (saved / "tokenizer.json").is_file():
            raise FileNotFoundError(
                f"--resume: {saved} holds no tokenizer.json (a run saves its trained tokenizer there "
                "when it starts); set tokenizer: to the folder of the tokenizer it was trained with"
            )
        tokenizer = AutoTokenizer.from_pretrained(saved)
    else:
        columns = dict.fromkeys([*TEXT_COLUMNS, *cfg["text_columns"]])  # the descriptions, then any other
        texts = [t for column in columns for t in train_ds[column]]
        tokenizer = train_prose_tokenizer(texts, vocab_size=int(cfg["tokenizer_vocab_size"]))
    tokenizer.model_max_length = int(cfg["max_text_length"])
    return tokenizer


def build_model(cfg: dict, tokenizer, train_ds):
    import numpy as np
    from transformers import BertModel

    from hfmat.text import CrystalCLIP, CrystalEncoder, text_encoder_config

    lattices = np.asarray(train_ds["lattice"], dtype=np.float64)
    counts = np.asarray(train_ds["num_atoms"], dtype=np.float64)
    scale = float(np.mean(np.cbrt(np.abs(np.linalg.det(lattices)) / counts)))
    bert = BertModel(
        text_encoder_config(
            tokenizer,
            hidden_size=int(cfg["text_hidden_size"]),
            num_layers=int(cfg["text_layers"]),
            num_heads=int(cfg["text_heads"]),
            intermediate_size=int(cfg["text_intermediate_size"]),
        )
    )
    crystal = CrystalEncoder(
        hidden_dim=int(cfg["crystal_hidden_dim"]),
        num_layers=int(cfg["crystal_layers"]),
        num_frequencies=int(cfg["num_frequencies"]),
        time_embed_dim=int(cfg["time_embed_dim"]),
        max_atoms=int(cfg["max_atoms"]),
        lattice_scale=scale,
        embed_dim=int(cfg["text_hidden_size"]),
    )
    return CrystalCLIP(
        bert, crystal, tokenizer, logit_scale=float(cfg["logit_scale_init"]), text_columns=cfg["text_columns"]
    )


def hard_negative_loader(train_ds, collate, cfg: dict):
    """The training loader over :class:`hfmat.text.sampling.HardNegativeBatchSampler` batches (whole
    batches only), and the sampler's statistics for the first epoch."""
    from hfmat.text.sampling import HardNegativeBatchSampler

    key = cfg["hard_negative_key"]
    if key not in train_ds.column_names:
        raise ValueError(
            f"hard_negative_key: {key!r} is not a column of the training data; choose from {train_ds.column_names}"
        )
    sampler = HardNegativeBatchSampler(
        train_ds[key],
        int(cfg["per_device_batch_size"]),
        hard_negative_fraction=float(cfg["hard_negative_fraction"]),
        seed=int(cfg["seed"]),
        drop_last=True,
    )
    loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate)
    return loader, {"key": key, "fraction": float(cfg["hard_negative_fraction"]), **sampler.stats()}


def retrieval_report(model, dataset, cfg: dict) -> dict:
    """Retrieval per text column among min(num_candidates, rows) candidates."""
    from hfmat.text import embed_pairs, retrieval_accuracy

    candidates = min(int(cfg["num_candidates"]), len(dataset))
    out = {}
    for column in cfg["text_columns"]:
        text, crystal = embed_pairs(model, dataset, column)
        out[column] = retrieval_accuracy(text, crystal, num_candidates=candidates, seed=int(cfg["seed"]))
    return out


def split_datasets(cfg: dict):
    """``(train, eval, test)`` of a config with one ``dataset``: its ``train_split`` with the CLIP
    columns (``eval_split``, or ``eval_holdout`` rows of it, for eval), and ``test_split`` (or None)."""
    from hfmat.text.data import clip_dataset

    data = {"source": cfg["dataset"], "data_dir": cfg["data_dir"], "num_proc": cfg["num_proc"]}

    def split(name):
        return clip_dataset(**data, split=name, properties=cfg["properties"]) if name else None

    train, evalset = common.holdout_and_limit(split(cfg["train_split"]), split(cfg["eval_split"]), cfg)
    return train, evalset, split(cfg["test_split"])


def source_datasets(cfg: dict):
    """``(train, eval, test, scope)`` of a config with ``datasets:`` (several sources): the train and
    eval rows of :func:`common.split_sources` with their property columns and CLIP columns, and the
    rows of every source's ``test_split`` (None without one), labelled by source."""
    from hfmat.data.sources import Source, load_sources, parse_sources
    from hfmat.text.data import add_clip_columns

    def prepare(ds):
        return add_clip_columns(ds, properties=cfg["properties"], num_proc=cfg["num_proc"])

    train, evalset, scope = common.split_sources(cfg, prepare=prepare, keep_columns=True)
    test = None
    if cfg["test_split"]:
        sources = [
            Source(s.dataset, str(cfg["test_split"]), s.data_dir, s.name)
            for s in parse_sources(cfg["datasets"], cfg["data_dir"])
        ]
        test = prepare(load_sources(sources, keep_columns=True))
    return train, evalset, test, scope


def test_report(model, test_ds, cfg: dict) -> tuple[dict, dict | None]:
    """Retrieval on the test rows (``{split, pairs, column: ...}``) and, when they come from several
    sources, on each source's rows alone (``{label: {split, pairs, column: ...}}``)."""
    model.eval()
    report = {"split": cfg["test_split"], "pairs": len(test_ds), **retrieval_report(model, test_ds, cfg)}
    if "source" not in test_ds.column_names:
        return report, None
    from hfmat.data.sources import source_counts

    by_source = {}
    labels = test_ds["source"]
    for label in source_counts(test_ds):
        part = test_ds.select([i for i, x in enumerate(labels) if x == label])
        by_source[label] = {"split": label, "pairs": len(part), **retrieval_report(model, part, cfg)}
    return report, by_source


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = common.config_from_args(args, DEFAULTS)
    common.set_threads(cfg["num_threads"])
    command = "accelerate launch training/train_crystal_clip.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )

    from hfmat.text.data import CLIP_TEXT_COLUMNS, ClipCollator

    unknown = [c for c in cfg["text_columns"] if c not in CLIP_TEXT_COLUMNS]
    if unknown or not cfg["text_columns"]:
        raise ValueError(
            f"text_columns must be a non-empty subset of {list(CLIP_TEXT_COLUMNS)}, got {cfg['text_columns']}"
        )
    fraction = float(cfg["hard_negative_fraction"] or 0.0)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"hard_negative_fraction must be in [0, 1], got {cfg['hard_negative_fraction']}")
    if cfg["datasets"]:  # several sources: `dataset` names them all (the record and the card)
        cfg["dataset"] = common.sources_label(cfg)
    accelerator = common.accelerator_for(cfg)
    scope = None
    with accelerator.main_process_first():
        if cfg["datasets"]:
            train_ds, eval_ds, test_ds, scope = source_datasets(cfg)
        else:
            train_ds, eval_ds, test_ds = split_datasets(cfg)
    tokenizer = prose_tokenizer_for(cfg, train_ds, resume=bool(args.resume))
    if accelerator.is_main_process and not args.resume:
        tokenizer.save_pretrained(Path(cfg["output_dir"]) / RUN_TOKENIZER)  # what --resume loads
    model = build_model(cfg, tokenizer, train_ds)

    collate = ClipCollator(
        tokenizer,
        text_columns=cfg["text_columns"],
        max_length=int(cfg["max_text_length"]),
        seed=int(cfg["seed"]) + accelerator.process_index,
    )
    eval_collate = ClipCollator(
        tokenizer, text_columns=cfg["text_columns"], max_length=int(cfg["max_text_length"]), seed=1
    )
    train_loader, eval_loader = common.dataloaders(train_ds, eval_ds, collate, cfg)
    eval_loader.collate_fn = eval_collate
    hard_negatives = None
    if fraction > 0:
        train_loader, hard_negatives = hard_negative_loader(train_ds, collate, cfg)
    batches_per_epoch = math.ceil(len(train_loader) / accelerator.num_processes)
    total_steps = common.total_steps_for(cfg, batches_per_epoch)
    optimizer, scheduler = common.optimizer_and_scheduler_for(
        model, cfg, total_steps, accelerator.num_processes
    )
    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler
    )
    progress, _ = common.start_or_resume(accelerator, args.resume, cfg["output_dir"])
    what = f"{len(train_ds)} train / {len(eval_ds)} eval crystal-text pairs"
    n_params = common.start_trackers(
        accelerator, model, cfg, "crystal_clip", what, batches_per_epoch, total_steps
    )
    loop = common.TrainingLoop(
        accelerator, cfg, model, optimizer, scheduler, train_loader, progress, total_steps, batches_per_epoch
    )
    first_loss: list[float] = []

    def loss(batch):
        out = model(batch)
        if not first_loss:
            first_loss.append(float(out["loss"].detach()))
        return {"loss": out["loss"]}

    def log(means: dict) -> dict:
        accelerator.log(
            {"train/loss": means["loss"], "train/lr": scheduler.get_last_lr()[0]}, step=progress.step
        )
        return {"loss": f"{means['loss']:.3f}", "it_s": f"{loop.steps_per_s:.2f}"}

    def evaluate() -> dict:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.eval()
        with torch.no_grad():
            losses = [float(unwrapped(b)["loss"]) for b in eval_loader]
        report = retrieval_report(unwrapped, eval_ds, cfg)
        unwrapped.train()
        result = {"loss": sum(losses) / max(len(losses), 1), "retrieval": report}
        top5 = {c: round(r["text_to_crystal_top5"], 3) for c, r in report.items()}
        accelerator.log({"eval/loss": result["loss"]}, step=progress.step)
        accelerator.print(f"step {progress.step}: eval loss {result['loss']:.4f}, text->crystal top-5 {top5}")
        return result

    stop_reason = loop.run(
        loss=loss,
        count=lambda batch: batch["num_atoms"].new_tensor(len(batch["num_atoms"])),
        evaluate=evaluate,
        log=log,
        stop_after_steps=args.stop_after_steps,
    )
    summary = {
        **loop.summary(),
        "first_train_loss": first_loss[0] if first_loss else None,
        "eval": loop.last_eval,
        "pairs_per_s": loop.timer.rate,
        "wall_s": loop.timer.elapsed,
        "n_params": n_params,
        "stop_reason": stop_reason,
        "train_pairs": len(train_ds),
        **({"hard_negatives": hard_negatives} if hard_negatives else {}),
        "eval_pairs": len(eval_ds),
        "command": command,
    }
    if stop_reason == "stopped":
        return common.finish(accelerator, summary)
    if loop.needs_final_eval:
        summary["eval"] = evaluate()
    unwrapped = accelerator.unwrap_model(model)
    if test_ds is not None:
        summary["test"], by_source = test_report(unwrapped, test_ds, cfg)
        if by_source:
            summary["test_by_source"] = by_source
    final_dir = common.final_dir_for(cfg)

    def write():
        from hfmat.text.card import write_clip_card

        unwrapped.save_pretrained(final_dir, model_name=cfg["model_name"])
        common.write_training_summary(final_dir, cfg, summary, **({"data": scope} if scope else {}))
        write_clip_card(final_dir)
        accelerator.print(f"final Crystal CLIP written to {final_dir}")

    return common.finish(accelerator, summary, write)


if __name__ == "__main__":
    common.run_main(main)
