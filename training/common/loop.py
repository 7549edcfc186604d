"""The optimisation loop both scripts run (``TrainingLoop``), its timer and trackers, and the
SIGTERM flag that makes it save and stop."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any

import torch

from .checkpoints import TrainingProgress, epoch_batches, save_checkpoint
from .config import flat_hparams


class StepTimer:
    """Tokens (or samples) per second over the run, and a wall-clock budget."""

    def __init__(self, max_minutes: float | None = None):
        self.start = time.perf_counter()
        self.max_seconds = None if not max_minutes else float(max_minutes) * 60.0
        self.count = 0

    def add(self, n: int) -> None:
        self.count += int(n)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.count / max(self.elapsed, 1e-9)

    def out_of_time(self) -> bool:
        return self.max_seconds is not None and self.elapsed >= self.max_seconds


def start_trackers(
    accelerator, model, cfg: dict[str, Any], name: str, what: str, batches_per_epoch: int, total_steps: int
) -> int:
    """Start the trackers (tensorboard, the config as hparams) and print what the run is; returns the
    model's parameter count. ``what`` describes the data (``"30 train / 8 eval CIFs"``)."""
    n_params = sum(p.numel() for p in accelerator.unwrap_model(model).parameters())
    accelerator.init_trackers(name, config=flat_hparams({**cfg, "n_params": n_params}))
    accelerator.print(
        f"{n_params / 1e6:.2f}M parameters, {what}, "
        f"{batches_per_epoch} batches per epoch per process, {total_steps} optimizer steps, "
        f"{accelerator.num_processes} process(es) on {accelerator.device}"
    )
    return n_params


@contextlib.contextmanager
def _sigterm_flag():
    """``{"set": bool}``, set by a SIGTERM while the block runs (the previous handler is restored
    after it; outside the main thread no handler can be installed and the flag stays False)."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["set"] = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


class TrainingLoop:
    """The optimisation loop of both scripts, with their own loss, evaluation and logging as callbacks.

    Each batch: the loss under ``accelerator.accumulate`` (backward, gradient clipping, optimizer
    and LR-scheduler step), then the batch is counted (tokens or crystals, all processes). Each
    optimizer step: ``after_step`` (an EMA update), ``log`` every ``log_every`` steps, ``evaluate``
    every ``eval_every`` steps, a checkpoint every ``save_every`` steps. The run stops at
    ``total_steps``, after ``stop_after_steps`` (``stop_reason`` "stopped") or after
    ``max_minutes`` (``"time"``), saving a checkpoint on the way out.

    ``timer`` starts when the loop is made; ``last_loss`` (mean over processes of the last step)
    and ``last_eval`` (what ``evaluate`` last returned, at step ``eval_step``) are kept for the
    summary.
    """

    def __init__(
        self,
        accelerator,
        cfg: dict[str, Any],
        model,
        optimizer,
        scheduler,
        train_loader,
        progress: TrainingProgress,
        total_steps: int,
        batches_per_epoch: int,
    ):
        self.accelerator = accelerator
        self.cfg = cfg
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.progress = progress
        self.total_steps = int(total_steps)
        self.batches_per_epoch = batches_per_epoch
        self.timer = StepTimer(cfg["max_minutes"])
        self.steps_at_start = progress.step
        self.last_loss = float("nan")
        self.last_eval = None
        self.eval_step = None  # the step last_eval was measured at
        self.stop_reason = "done"

    @property
    def epochs(self) -> float:
        """Epochs done, fractional."""
        return self.progress.epoch + self.progress.batch_in_epoch / self.batches_per_epoch

    @property
    def steps_per_s(self) -> float:
        """Optimizer steps per second in this process's run (a resumed run counts from its start)."""
        return (self.progress.step - self.steps_at_start) / max(self.timer.elapsed, 1e-9)

    def summary(self) -> dict[str, Any]:
        """The head of a run's summary: optimizer steps done and planned, epochs, the last loss."""
        return {
            "step": self.progress.step,
            "total_steps": self.total_steps,
            "epochs": self.epochs,
            "train_loss": self.last_loss,
        }

    @property
    def needs_final_eval(self) -> bool:
        """Whether the model as it is now was not evaluated (the final folder wants its eval)."""
        return self.last_eval is None or self.eval_step != self.progress.step

    def run(self, *args, **kwargs) -> str:
        """Train to the end (see ``_run``); a SIGTERM meanwhile makes the loop save a checkpoint
        at the end of the optimizer step under way and stop ("stopped"), so a killed job loses no
        step and ``--resume latest`` continues from it."""
        with _sigterm_flag() as self._sigterm:
            return self._run(*args, **kwargs)

    def _terminated(self) -> bool:
        flag = float(self._sigterm["set"])
        if self.accelerator.num_processes > 1:  # every process stops at the same step
            flag = self.accelerator.reduce(torch.tensor(flag, device=self.accelerator.device), "sum").item()
        return flag > 0

    def _run(self, loss, count, evaluate, log, after_step=None, stop_after_steps: int | None = None) -> str:
        """Train to the end; returns the stop reason ("done", "stopped" or "time").

        - ``loss(batch)``: a dict of scalar tensors; ``"loss"`` is backpropagated, every entry is
          averaged between logs.
        - ``count(batch)``: a tensor, what the batch holds (tokens, crystals); summed over processes
          into ``progress.tokens`` and the timer's rate.
        - ``evaluate()``: evaluates (and reports) the model; its value becomes ``last_eval``.
        - ``log(means)``: logs the averaged loss parts; returns the progress bar's postfix dict.
        - ``after_step()``: called after each optimizer step (before it is counted).
        - ``stop_after_steps``: save a checkpoint and stop ("stopped") at this step.
        """
        from tqdm.auto import tqdm

        acc, cfg, progress = self.accelerator, self.cfg, self.progress
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        bar = tqdm(
            total=self.total_steps, initial=progress.step, disable=not acc.is_local_main_process, desc="train"
        )
        sums: dict[str, float] = {}
        n = 0
        model.train()
        while progress.step < self.total_steps:
            for batch in epoch_batches(self.train_loader, progress.epoch, progress.batch_in_epoch):
                with acc.accumulate(model):
                    parts = loss(batch)
                    acc.backward(parts["loss"])
                    if acc.sync_gradients and cfg["max_grad_norm"]:
                        acc.clip_grad_norm_(model.parameters(), float(cfg["max_grad_norm"]))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                progress.batch_in_epoch += 1
                seen = int(acc.reduce(count(batch), reduction="sum").item())
                progress.tokens += seen
                self.timer.add(seen)
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
                n += 1
                if not acc.sync_gradients:
                    continue
                if after_step is not None:
                    after_step()
                progress.step += 1
                self.last_loss = acc.reduce(parts["loss"].detach(), reduction="mean").item()
                bar.update(1)
                if progress.step % int(cfg["log_every"]) == 0 or progress.step == self.total_steps:
                    bar.set_postfix(**log({key: value / max(n, 1) for key, value in sums.items()}))
                    sums, n = {}, 0
                if progress.step % int(cfg["eval_every"]) == 0 or progress.step == self.total_steps:
                    self.last_eval, self.eval_step = evaluate(), progress.step
                stopping = stop_after_steps is not None and progress.step >= stop_after_steps
                if self._terminated():
                    acc.print(f"SIGTERM: saving a checkpoint at step {progress.step} and stopping")
                    stopping = True
                out_of_time = self.timer.out_of_time()
                if progress.step % int(cfg["save_every"]) == 0 or stopping or out_of_time:
                    save_checkpoint(acc)
                if stopping or out_of_time:
                    self.stop_reason = "stopped" if stopping else "time"
                    break
                if progress.step >= self.total_steps:
                    break
            else:  # the epoch ran out
                progress.epoch += 1
                progress.batch_in_epoch = 0
                continue
            break  # stopped, out of time, or done
        bar.close()
        return self.stop_reason
