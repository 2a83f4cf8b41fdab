"""SGD with detectron2's parameter groups, its LR schedules and its gradient clipping."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)


def param_groups(model: nn.Module, *, base_lr: float, weight_decay: float, weight_decay_norm: float = 0.0,
                 bias_lr_factor: float = 1.0, weight_decay_bias: float | None = None) -> list[dict]:
    """One group per distinct (lr, weight_decay): norm layers get ``weight_decay_norm`` (0 by default),
    biases ``base_lr * bias_lr_factor`` and ``weight_decay_bias`` (defaults: as other weights)."""
    if weight_decay_bias is None:
        weight_decay_bias = weight_decay
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            lr, wd = base_lr, weight_decay
            if isinstance(module, _NORM_TYPES) or type(module).__name__.endswith("Norm2d"):
                wd = weight_decay_norm
            elif name == "bias":
                lr, wd = base_lr * bias_lr_factor, weight_decay_bias
            groups.setdefault((lr, wd), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    s = cfg.SOLVER
    groups = param_groups(model, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY, weight_decay_norm=s.WEIGHT_DECAY_NORM,
                          bias_lr_factor=s.BIAS_LR_FACTOR, weight_decay_bias=s.WEIGHT_DECAY_BIAS)
    return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)


class WarmupSchedule:
    """LR multiplier at an iteration: linear (or constant) warmup, then multi-step or cosine.

    Same values as detectron2's ``WarmupParamScheduler`` over ``MultiStepParamScheduler`` /
    ``CosineParamScheduler``: warmup goes linearly from ``warmup_factor`` to the main schedule's
    value at ``warmup_iters``, starting from ``warmup_factor`` times its value at 0.
    """

    def __init__(self, *, name: str, max_iter: int, steps: Iterable[int] = (), gamma: float = 0.1,
                 warmup_iters: int = 0, warmup_factor: float = 0.001, warmup_method: str = "linear",
                 end_factor: float = 0.0):
        if name not in ("WarmupMultiStepLR", "WarmupCosineLR"):
            raise ValueError(f"unknown LR_SCHEDULER_NAME {name!r} (WarmupMultiStepLR or WarmupCosineLR)")
        self.name, self.max_iter, self.steps, self.gamma = name, int(max_iter), sorted(int(s) for s in steps), gamma
        self.warmup_iters, self.warmup_factor, self.warmup_method = int(warmup_iters), warmup_factor, warmup_method
        self.end_factor = end_factor
        if any(s > self.max_iter for s in self.steps):
            raise ValueError(f"SOLVER.STEPS {self.steps} beyond MAX_ITER {self.max_iter}")

    def main(self, it: int) -> float:
        if self.name == "WarmupMultiStepLR":
            return self.gamma ** sum(1 for s in self.steps if it >= s)
        t = min(it, self.max_iter) / max(1, self.max_iter)
        return self.end_factor + (1.0 - self.end_factor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            start, end = self.warmup_factor * self.main(0), self.main(self.warmup_iters)
            if self.warmup_method == "constant":
                return start
            alpha = it / self.warmup_iters
            return start + alpha * (end - start)
        return self.main(it)


class LRScheduler:
    """Sets each group's lr to ``initial_lr * schedule(iteration)``; ``step()`` after each iteration."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: WarmupSchedule, start_iter: int = 0):
        self.optimizer, self.schedule = optimizer, schedule
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.iter = start_iter
        self._apply()

    def _apply(self) -> None:
        f = self.schedule(self.iter)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f

    def step(self) -> None:
        self.iter += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"iter": self.iter}

    def load_state_dict(self, state: dict) -> None:
        self.iter = int(state["iter"])
        self._apply()


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> LRScheduler:
    s = cfg.SOLVER
    end = s.BASE_LR_END / s.BASE_LR if s.BASE_LR else 0.0
    schedule = WarmupSchedule(name=s.LR_SCHEDULER_NAME, max_iter=s.MAX_ITER, steps=s.STEPS, gamma=s.GAMMA,
                              warmup_iters=s.WARMUP_ITERS, warmup_factor=s.WARMUP_FACTOR,
                              warmup_method=s.WARMUP_METHOD, end_factor=end)
    return LRScheduler(optimizer, schedule)


class GradientClipper:
    """detectron2's ``SOLVER.CLIP_GRADIENTS``: "value" clamps every gradient element to
    ±``clip_value``; "norm" scales *each parameter's* gradient to norm <= ``clip_value``;
    "full_model" scales all gradients together to a total norm <= ``clip_value``."""

    def __init__(self, clip_type: str, clip_value: float, norm_type: float = 2.0):
        if clip_type not in ("value", "norm", "full_model"):
            raise ValueError(f"CLIP_TYPE must be value, norm or full_model, not {clip_type!r}")
        self.clip_type, self.clip_value, self.norm_type = clip_type, float(clip_value), float(norm_type)

    def __call__(self, params: Iterable[nn.Parameter]) -> None:
        params = [p for p in params if p.grad is not None]
        if self.clip_type == "value":
            torch.nn.utils.clip_grad_value_(params, self.clip_value)
        elif self.clip_type == "norm":
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], self.clip_value, self.norm_type)
        else:
            torch.nn.utils.clip_grad_norm_(params, self.clip_value, self.norm_type)

    @classmethod
    def from_config(cls, cfg) -> GradientClipper | None:
        c = cfg.SOLVER.CLIP_GRADIENTS
        return cls(c.CLIP_TYPE, c.CLIP_VALUE, c.NORM_TYPE) if c.ENABLED else None
