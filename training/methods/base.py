"""What a training method gives the shared loop (training/loop.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from ...core.builtin import builtin_name, load_builtin
from ...core.model_files import load_model, save_model
from ...core.models import EditModel
from ...core.models.toy import build_toy
from ..config import TrainConfig
from ..data import Needs, held_out, make_dataset
from ..ema import EMA


@dataclass(frozen=True)
class TrainState:
    """Where the loop is, for a method's loss: the optimizer step being computed (from 0) and the
    loop's EMA of the trainable weights (None without one), which some methods sample from."""

    step: int = 0
    ema: EMA | None = None


@dataclass
class Critic:
    """A second model a method trains beside the editor (NP-Edit's fake-score model, ByteEdit's
    discriminator): its own AdamW at ``lr`` on the run's schedule, stepped ``updates`` times by
    ``Method.critic_loss`` before each editor step. It is saved in checkpoints, not in the model file."""

    module: nn.Module
    updates: int = 1
    lr: float = 1e-4


class Method:
    """One training recipe. ``loss`` gets one ``torch.Generator`` per sample, seeded from the
    run's seed and the sample's global index, so every random draw (noise, time, dropout) is
    the same whatever the batch layout, number of processes or resume point."""

    name: ClassVar[str]
    Options: ClassVar[type]
    needs: ClassVar[Needs]  # the rows it reads

    def __init__(self, config: TrainConfig, options) -> None:
        self.config, self.options = config, options

    def build_model(self) -> EditModel:
        if self.config.model == "new":
            return build_toy(self.config.seed)
        builtin = builtin_name(self.config.model)
        if builtin:
            return load_builtin(builtin, "training config › model")
        return load_model(self.config.model, where="training config › model")

    def trainable(self, model: EditModel) -> dict[str, nn.Module]:
        raise NotImplementedError

    def trains(self, name: str) -> bool:
        """Whether parameter ``name`` ("module.param") of a ``trainable`` module trains; all by default."""
        return True

    def dataset(self) -> Dataset:
        """What ``needs`` names, from the toy world or the user's files (``data.source``)."""
        return make_dataset(self.config.data, self.needs, self.name)

    def loss(self, model: EditModel, batch: dict, rngs: list[torch.Generator],
             state: TrainState) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def critics(self, model: EditModel) -> dict[str, Critic]:
        """The second models this method trains, by name (built after ``build_model``); none by default."""
        return {}

    def critic_loss(self, name: str, model: EditModel, batch: dict, rngs: list[torch.Generator],
                    state: TrainState) -> tuple[torch.Tensor, dict]:
        """Critic ``name``'s loss on one micro-batch; its own draws (``rngs`` are a stream apart from
        the editor's). The editor's weights do not change by it: the loop drops any gradient it leaves them."""
        raise NotImplementedError

    def held_out(self) -> Dataset | None:
        """The file rows ``data.validation`` names, or None for the toy world's validation split."""
        return held_out(self.config.data, self.needs)

    def validate(self, model: EditModel, rows: Dataset | None) -> tuple[torch.Tensor, dict[str, float]]:
        """Pictures for a grid ([N,3,H,W] in -1..1) and metrics: on ``rows`` (``held_out``) when
        given, else on the toy world's validation split."""
        raise NotImplementedError

    def save(self, model: EditModel, out: Path) -> Path:
        """Write the trained model (the EMA weights are in place) as ``out/model.safetensors``,
        in the format Load Edit Model reads; the model remembers the size it was trained at."""
        extra = {**model.info.extra, "image_size": self.config.data.size}
        model.info = replace(model.info, method=self.name, name=out.name, base_hash="", extra=extra)
        return save_model(model, out / "model.safetensors")


def per_sample(rngs: list[torch.Generator], shape: tuple[int, ...], draw=torch.randn) -> torch.Tensor:
    """One draw of ``shape`` from each sample's generator, stacked."""
    return torch.stack([draw(shape, generator=g) for g in rngs])


def per_sample_step(rngs: list[torch.Generator], last: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One step index per sample over 1..``last``: uniform, or drawn in proportion to ``weights`` [last]."""
    if weights is None:
        return per_sample(rngs, (), lambda shape, generator: torch.randint(1, last + 1, shape, generator=generator))
    return per_sample(rngs, (), lambda shape, generator: torch.multinomial(weights, 1, generator=generator)[0] + 1)


def logit_normal_weights(steps: int) -> torch.Tensor:
    """The standard logit-normal density (flow bases train at such times) at t = k/steps, k = 1..steps:
    a grid restricted to the times the base saw most (t = 1, pure noise, has density 0)."""
    t = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    inside = t < 1
    logit = torch.log(t[inside] / (1 - t[inside]))
    density = torch.zeros(steps, dtype=torch.float64)
    density[inside] = torch.exp(-logit.square() / 2) / (t[inside] * (1 - t[inside]))
    return density / density.sum()
