"""The loop's side of a method's critics (``Method.critics``): each one's optimizer, schedule,
updates before every editor step, and its part of a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from accelerate import Accelerator
from torch import nn

from ..core.models import EditModel
from .config import ConfigError, TrainConfig
from .methods.base import Critic, Method, TrainState
from .optim import adamw, rates, schedule

Rngs = Callable[[list[int], int], list[torch.Generator]]  # (sample indices, stream) -> one generator each


class _CriticObjective(nn.Module):
    """A critic's module plus its loss, as one module for DDP to wrap (so its gradients are averaged)."""

    def __init__(self, method: Method, name: str, model: EditModel, module: nn.Module) -> None:
        super().__init__()
        self.module, self.method, self.name, self.model = module, method, name, model

    def forward(self, batch: dict, rngs: list[torch.Generator], state: TrainState):
        return self.method.critic_loss(self.name, self.model, batch, rngs, state)


@dataclass
class _Running:
    critic: Critic
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR

    def params(self) -> dict[str, nn.Parameter]:
        return dict(self.critic.module.named_parameters())


class Critics:
    """Every critic of ``method``, trained on the step's micro-batches in turn before the editor's step."""

    def __init__(self, method: Method, model: EditModel, accelerator: Accelerator, config: TrainConfig) -> None:
        self.config, self.running = config, {}
        critics = method.critics(model)
        if critics and accelerator.scaler is not None:
            raise ConfigError(f"'mixed_precision: fp16' scales one optimizer's loss; {method.name} also trains "
                              f"{', '.join(critics)}. Use bf16.")
        for name, critic in critics.items():
            critic.module.to(accelerator.device).requires_grad_(True).train()
            optimizer = adamw([{"params": list(critic.module.parameters()), "lr": critic.lr, "name": ""}], config.optim)
            objective = accelerator.prepare_model(_CriticObjective(method, name, model, critic.module))
            self.running[name] = _Running(critic, objective, optimizer, schedule(optimizer, config))

    def __bool__(self) -> bool:
        return bool(self.running)

    def step(self, micro: list[tuple[list[int], dict]], state: TrainState, rngs: Rngs) -> dict[str, float]:
        """Each critic's ``updates`` optimizer steps, update ``u`` on micro-batch ``u`` mod their number
        with the sample streams ``1 + u``: the editor's own draws (stream 0) stay as without critics."""
        logs = {}
        for name, run in self.running.items():
            for u in range(run.critic.updates):
                indices, batch = micro[u % len(micro)]
                run.optimizer.zero_grad(set_to_none=True)  # the editor's last backward may have reached it
                loss, parts = run.objective(batch, rngs(indices, 1 + u), state)
                loss.backward()
                if self.config.optim.grad_clip:
                    torch.nn.utils.clip_grad_norm_(run.critic.module.parameters(), self.config.optim.grad_clip)
                run.optimizer.step()
            logs |= {f"critic/{name}/{k}": v for k, v in parts.items()}
            logs |= rates(run.optimizer, f"critic/{name}/lr")
            run.scheduler.step()
        return logs

    def weights(self) -> dict[str, torch.Tensor]:
        return {f"critic.{name}.{k}": p for name, run in self.running.items() for k, p in run.params().items()}

    def optimizers(self) -> dict[str, dict]:
        return {f"critic.{name}": run.optimizer.state_dict() for name, run in self.running.items()}

    def schedulers(self) -> dict[str, dict]:
        return {f"critic.{name}": run.scheduler.state_dict() for name, run in self.running.items()}

    def load(self, weights: dict[str, torch.Tensor], optimizers: dict[str, dict], schedulers: dict[str, dict]) -> None:
        with torch.no_grad():
            for name, run in self.running.items():
                for k, p in run.params().items():
                    p.copy_(weights[f"critic.{name}.{k}"])
                run.optimizer.load_state_dict(optimizers[f"critic.{name}"])
                run.scheduler.load_state_dict(schedulers[f"critic.{name}"])
