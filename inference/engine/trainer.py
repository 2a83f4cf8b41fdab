"""The training loop: SGD steps with clipping and AMP, LR schedule, periodic checkpoints, logging.

:class:`Trainer` knows nothing about detection: it needs a model whose training ``forward`` takes a
batch (a list of input dicts) and returns a dict of scalar losses, an iterable of batches and an
optimizer. :func:`build_trainer` wires it from a config (see ``inference.cli.train``).
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext

import torch
from torch import nn

from .checkpointer import TrainingCheckpointer
from .execution import ExecutionPolicy, apply_execution_policy
from .optim import GradientClipper, LRScheduler

logger = logging.getLogger("inference.engine")


class _Window:
    def __init__(self, size: int = 20):
        self.values: deque = deque(maxlen=size)

    def add(self, v: float) -> None:
        self.values.append(v)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


class Trainer:
    """Runs iterations ``start_iter .. max_iter - 1``.

    After iteration ``i`` (0-based) completes, a checkpoint ``model_{i:07d}.pth`` is written when
    ``(i + 1) % checkpoint_period == 0`` (not at the last one), and ``model_final.pth`` at the end;
    each holds ``iteration = i``, so :meth:`resume` continues at ``i + 1``. Checkpoints hold plain data only
    and are read back with ``weights_only=True``. ``execution``: how the model runs here, applied once
    (default ``ExecutionPolicy.for_training(device)``). ``on_step(done, losses, seconds_per_iter)`` is
    called after every iteration; ``should_stop()`` is polled after every iteration and, when it says
    True before the last one, a checkpoint of that iteration is written (so :meth:`resume` continues
    there), no ``model_final.pth``, and :attr:`stopped` is set.
    """

    def __init__(self, model: nn.Module, data: Iterable, optimizer: torch.optim.Optimizer, *, max_iter: int,
                 scheduler: LRScheduler | None = None, clipper: GradientClipper | None = None,
                 output_dir: str | None = None, checkpoint_period: int = 0, max_to_keep: int = 2,
                 amp: bool = False, log_period: int = 20, progress: bool | None = None,
                 log: Callable[[str], None] | None = None, extra_state: dict | None = None,
                 execution: ExecutionPolicy | None = None,
                 on_step: Callable[[int, dict[str, float], float], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, step_seed: int | None = None):
        self.model, self.data, self.optimizer, self.scheduler = model, data, optimizer, scheduler
        self.max_iter, self.clipper = int(max_iter), clipper
        self.device = next(model.parameters()).device
        self.execution = ExecutionPolicy.for_training(self.device) if execution is None else execution
        apply_execution_policy(model, self.execution)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.output_dir, self.checkpoint_period, self.log_period = output_dir, int(checkpoint_period), int(log_period)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.log = log or (lambda s: logger.info(s))
        self.extra_state = extra_state or {}
        self.checkpointer = (TrainingCheckpointer(output_dir, model, optimizer, scheduler, self.scaler, max_to_keep)
                             if output_dir else None)
        self.start_iter = 0
        self.iter = 0
        self.history: list[dict] = []          # one entry per log period
        self.loss_history: list[float] = []    # total loss per iteration (this run)
        self.iter_times: list[float] = []
        # on_step(iterations done, this step's losses, median seconds per iteration) after each step;
        # should_stop() polled after each step: True saves a checkpoint there and ends the run early
        self.on_step, self.should_stop = on_step, should_stop
        self.stopped = False
        # step_seed: torch's RNG (proposal sampling, ...) is seeded from (step_seed, iteration) before
        # each step, so a resumed run draws what an uninterrupted one would have
        self.step_seed = step_seed

    # -- resume ---------------------------------------------------------------------------------
    def resume(self) -> int:
        """Load the newest checkpoint in ``output_dir`` if any; returns the start iteration."""
        if self.checkpointer is not None:
            self.start_iter = self.checkpointer.resume()
        self.iter = self.start_iter
        return self.start_iter

    # -- one step -------------------------------------------------------------------------------
    def run_step(self, batch) -> dict[str, float]:
        self.model.train()
        ctx = torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()
        with ctx:
            loss_dict = self.model(batch)
        losses = sum(loss_dict.values())
        if not torch.isfinite(losses):
            raise FloatingPointError(f"loss became infinite or NaN at iteration {self.iter}: "
                                     + ", ".join(f"{k}={float(v):.4g}" for k, v in loss_dict.items()))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(losses).backward()
            if self.clipper is not None:
                self.scaler.unscale_(self.optimizer)
                self.clipper(self.model.parameters())
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            losses.backward()
            if self.clipper is not None:
                self.clipper(self.model.parameters())
            self.optimizer.step()
        out = {k: float(v.detach()) for k, v in loss_dict.items()}
        out["total_loss"] = float(losses.detach())
        return out

    # -- the loop -------------------------------------------------------------------------------
    def train(self) -> dict:
        windows: dict[str, _Window] = {}
        t_window, d_window = _Window(), _Window()
        metrics_file = open(os.path.join(self.output_dir, "metrics.json"), "a", encoding="utf-8") if self.output_dir else None
        bar = None
        if self.progress and self.start_iter < self.max_iter:
            from tqdm import tqdm
            bar = tqdm(total=self.max_iter, initial=self.start_iter, unit="it", dynamic_ncols=True, file=sys.stderr)
        write = bar.write if bar is not None else self.log
        if self.start_iter > 0:
            write(f"resuming at iteration {self.start_iter} of {self.max_iter}")
        data_iter = iter(self.data)
        t_start = time.perf_counter()
        try:
            for it in range(self.start_iter, self.max_iter):
                self.iter = it
                t0 = time.perf_counter()
                batch = next(data_iter)
                t1 = time.perf_counter()
                if self.step_seed is not None:
                    torch.manual_seed((int(self.step_seed) * 1_000_003 + it) % (2**63))
                values = self.run_step(batch)
                lr = self.optimizer.param_groups[0]["lr"]
                if self.scheduler is not None:
                    self.scheduler.step()
                dt = time.perf_counter() - t0
                t_window.add(dt)
                d_window.add(t1 - t0)
                self.iter_times.append(dt)
                self.loss_history.append(values["total_loss"])
                for k, v in values.items():
                    windows.setdefault(k, _Window()).add(v)
                done = self.iter + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{windows['total_loss'].median:.3f}", lr=f"{lr:.2g}", refresh=False)
                if done % self.log_period == 0 or done == self.max_iter or done == self.start_iter + 1:
                    eta = datetime.timedelta(seconds=int(t_window.median * (self.max_iter - done)))
                    rec = {"iteration": self.iter, "lr": lr, "time": t_window.median, "data_time": d_window.median}
                    rec.update({k: w.median for k, w in windows.items()})
                    self.history.append(rec)
                    if metrics_file:
                        metrics_file.write(json.dumps(rec) + "\n")
                        metrics_file.flush()
                    losses_txt = "  ".join(f"{k}: {w.median:.4g}" for k, w in windows.items())
                    write(f"eta: {eta}  iter: {done}/{self.max_iter}  {losses_txt}  time: {t_window.median:.3f} s/it  "
                          f"data_time: {d_window.median:.3f}  lr: {lr:.4g}")
                if self.on_step is not None:
                    self.on_step(done, values, t_window.median)
                if done < self.max_iter and self.should_stop is not None and self.should_stop():
                    if self.checkpointer is not None:
                        self.checkpointer.save(f"model_{self.iter:07d}", self.iter, **self.extra_state)
                    write(f"stopped at iteration {done} of {self.max_iter}")
                    self.stopped = True
                    break
                if self.checkpointer is not None and self.checkpoint_period > 0 and done % self.checkpoint_period == 0 \
                        and done < self.max_iter:
                    self.checkpointer.save(f"model_{self.iter:07d}", self.iter, **self.extra_state)
            else:
                self.iter = self.max_iter
        finally:
            if bar is not None:
                bar.close()
            if metrics_file:
                metrics_file.close()
        final = None
        if self.checkpointer is not None and self.max_iter > 0 and not self.stopped:
            final = self.checkpointer.save("model_final", self.max_iter - 1, **self.extra_state)
        total = time.perf_counter() - t_start
        steady = self.iter_times[min(5, len(self.iter_times) // 4):]
        return {"iterations": self.max_iter, "start_iter": self.start_iter, "seconds": total,
                "iterations_done": self.iter + 1 if self.stopped else self.max_iter, "stopped": self.stopped,
                "s_per_iter": (sum(steady) / len(steady)) if steady else math.nan,
                "final_checkpoint": final,
                "first_loss": self.loss_history[0] if self.loss_history else math.nan,
                "last_loss": self.loss_history[-1] if self.loss_history else math.nan}
