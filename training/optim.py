"""Optimizers, parameter groups and learning-rate schedules, for the editor and any critic."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .config import ConfigError, OptimConfig, TrainConfig


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step`` (from 0) over its base rate: a linear warm-up over
    ``warmup_steps``, then ``schedule``: constant, or a cosine or linear decay reaching 0 after the last step."""
    warmup, steps = max(1, config.optim.warmup_steps), config.steps
    if step + 1 < warmup or config.optim.schedule == "constant":
        return min(1.0, (step + 1) / warmup)
    done = (step + 1 - warmup) / max(1, steps - warmup + 1)  # 0 at the end of the warm-up, 1 after the last step
    return 0.5 * (1 + math.cos(math.pi * done)) if config.optim.schedule == "cosine" else 1.0 - done


def param_groups(params: dict[str, nn.Parameter], optim: OptimConfig) -> list[dict]:
    """One group per ``optim.group_lr`` prefix (the longest that matches a parameter's name wins)
    at its rate, and one named "" at ``optim.lr`` for the rest; each group keeps its ``name``."""
    prefixes = sorted(optim.group_lr, key=len, reverse=True)
    members: dict[str, list[nn.Parameter]] = {"": [], **{p: [] for p in optim.group_lr}}
    for name, param in params.items():
        members[next((p for p in prefixes if name.startswith(p)), "")].append(param)
    for prefix, found in members.items():
        if prefix and not found:
            tops = sorted({name.split(".")[0] + "." for name in params})
            raise ConfigError(f"'optim.group_lr' names {prefix!r}, which no trainable parameter's name starts "
                              f"with (they start with {', '.join(tops)}).")
    rates = {"": optim.lr, **optim.group_lr}
    return [{"params": found, "lr": rates[prefix], "name": prefix} for prefix, found in members.items() if found]


def adamw(groups: list[dict], optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over ``groups`` (each with its rate) with ``optim``'s betas and weight decay."""
    kw = dict(betas=optim.betas, weight_decay=optim.weight_decay)
    try:  # one kernel for all tensors: a per-tensor AdamW took a tenth of a toy step on a CPU
        return torch.optim.AdamW(groups, fused=True, **kw)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, **kw)


def schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Every group's rate follows ``lr_factor``; stepped by hand once per optimizer step (accelerate
    would step it once per process)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(lr_factor, config))


def rates(optimizer: torch.optim.Optimizer, key: str = "lr") -> dict[str, float]:
    """The current rate of each group, for the log: ``key`` for the unnamed group, ``key/name`` for the others."""
    return {key if not g.get("name") else f"{key}/{g['name']}": g["lr"] for g in optimizer.param_groups}
