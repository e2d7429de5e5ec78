"""``reward``: the quality reward model ByteEdit's feedback reads, trained with the Bradley–Terry
loss ``-log sigmoid(R(better) - R(worse))`` (methods.md §4.2) on preference pairs made from pictures
alone: each training picture is preferred to itself with one local defect (training/preferences.py).
The toy world's pictures are renders of training-split scenes; a user's are their caption rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.toy.render import render
from ...core.toy.world import fixed_scenes
from ..config import ConfigError
from ..data import Needs
from ..preferences import DEFECTS, degrade
from ..rewards import QualityNet, QualityReward
from .base import Method


@dataclass
class RewardOptions:
    width: int = 32
    calibrate_samples: int = 256  # training pictures whose pairs centre the saved logit
    validate_samples: int = 60  # validation pictures, each paired with every defect


class Reward(Method):
    name = "reward"
    Options = RewardOptions
    needs = Needs("captions")

    def build_model(self) -> QualityReward:
        if self.config.model != "new":
            raise ConfigError("The reward trainer starts from a new preference model: leave 'model' at 'new'.")
        torch.manual_seed(self.config.seed)
        return QualityReward(QualityNet(self.options.width))

    def trainable(self, model):
        return model.modules()

    def loss(self, model, batch, rngs, state):
        better = batch["image"].to(model.device)
        worse = torch.stack([degrade(p, g) for p, g in zip(batch["image"], rngs)]).to(model.device)
        margin = model.net(better) - model.net(worse)
        loss = -F.logsigmoid(margin).mean()
        return loss, {"loss": loss.item(), "accuracy": (margin > 0).float().mean().item()}

    @torch.no_grad()
    def validate(self, model, rows):
        """Pairwise accuracy per defect: how often the clean picture scores above its degraded self."""
        better = self._pictures(rows, self.options.validate_samples, "validation")
        metrics, worst = {}, []
        for k, defect in enumerate(DEFECTS):
            generators = [torch.Generator().manual_seed(1000 * k + i) for i in range(len(better))]
            worse = torch.stack([degrade(p, g, defect) for p, g in zip(better, generators)])
            metrics[f"accuracy/{defect}"] = (model.net(better) > model.net(worse)).float().mean().item()
            worst.append(worse[:4])
        metrics["accuracy"] = sum(metrics.values()) / len(DEFECTS)
        return torch.cat([better[:4], *worst]), metrics

    def _pictures(self, rows, n: int, split: str) -> torch.Tensor:
        if rows is not None:
            return torch.stack([rows[i]["image"] for i in range(min(n, len(rows)))])
        return torch.stack([render(s, self.config.data.size) for s in fixed_scenes(n, split)])

    def save(self, model, out: Path) -> Path:
        data = self.dataset()
        better = torch.stack([data[i]["image"] for i in range(self.options.calibrate_samples)])
        worse = torch.stack([degrade(p, torch.Generator().manual_seed(i)) for i, p in enumerate(better)])
        model.calibrate(better.to(model.device), worse.to(model.device))
        return model.save(out / "reward.safetensors")
