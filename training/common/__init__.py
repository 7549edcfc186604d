"""Training-loop pieces shared by hfmat's Accelerate scripts (train_cif_lm.py, train_diffusion.py).

Everything here is generic: the config keys and command-line flags both scripts take, config
files, the Accelerator, AdamW with warm-up and cosine decay, checkpoint/resume helpers, the
optimisation loop (``TrainingLoop``) and logging. The scripts keep their model- and data-specific
parts: datasets, the model, the loss, evaluation and the final Hub-ready folder.

Kept backwards compatible: other scripts import these names from ``common``; each lives in one
module of this package (config, data, accelerator, optim, checkpoints, loop, finish).

Resume, exactly:
- ``make_accelerator`` turns on automatic checkpoint naming (``<output_dir>/checkpoints/
  checkpoint_<i>``) and a seedable sampler, so a shuffled epoch is fixed by ``(seed, epoch)``.
- ``TrainingProgress`` (optimizer step, epoch, batches done in that epoch) is registered for
  checkpointing, so ``save_state`` writes it beside the model, optimizer, scheduler and RNG states.
- ``resume_from_checkpoint`` loads a checkpoint and sets ``project_configuration.iteration`` to the
  next index (Accelerate does not, and the next ``save_state`` would otherwise overwrite an older
  slot); ``epoch_batches`` then re-seeds the epoch and skips the batches already done
  (``accelerate.skip_first_batches``).
"""

from __future__ import annotations

from .accelerator import accelerator_for, end_training, make_accelerator
from .checkpoints import (
    CHECKPOINT_COMPLETE,
    TrainingProgress,
    checkpoint_index,
    epoch_batches,
    find_latest_checkpoint,
    resume_from_checkpoint,
    save_checkpoint,
    start_or_resume,
)
from .config import (
    DATA_KEYS,
    DEFAULTS,
    ConfigError,
    config_from_args,
    flat_hparams,
    load_config,
    merge_overrides,
    set_threads,
    training_arguments,
)
from .data import data_scope, dataloaders, holdout_and_limit, sources_label, split_sources
from .finish import earlier_stages, final_dir_for, finish, run_main, write_training_summary
from .loop import StepTimer, TrainingLoop, start_trackers
from .optim import (
    build_optimizer,
    build_optimizer_and_scheduler,
    build_scheduler,
    cosine_total_steps,
    optimizer_and_scheduler_for,
    total_steps_for,
)

__all__ = [
    "DEFAULTS",
    "ConfigError",
    "TrainingLoop",
    "accelerator_for",
    "config_from_args",
    "dataloaders",
    "end_training",
    "holdout_and_limit",
    "sources_label",
    "split_sources",
    "start_trackers",
    "write_training_summary",
    "final_dir_for",
    "finish",
    "optimizer_and_scheduler_for",
    "run_main",
    "start_or_resume",
    "total_steps_for",
    "training_arguments",
    "TrainingProgress",
    "build_optimizer",
    "build_scheduler",
    "build_optimizer_and_scheduler",
    "checkpoint_index",
    "epoch_batches",
    "find_latest_checkpoint",
    "flat_hparams",
    "load_config",
    "make_accelerator",
    "merge_overrides",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_threads",
    "StepTimer",
    "cosine_total_steps",
    "CHECKPOINT_COMPLETE",
    "DATA_KEYS",
    "earlier_stages",
    "data_scope",
]
