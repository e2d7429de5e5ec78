"""What every family's sampling loop shares: settings, progress and stop hooks, seeded noise.

The loops themselves belong to their families (``EditModel.sample`` in ``core/models/``):
each reuses the encoded source and text for every step and batches its guidance branches
into one model call per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from .models.base import EditModel
    from .models.conditioning import SourceCond, TextCond

Progress = Callable[[int, int, "torch.Tensor | None"], None]


class Interrupted(RuntimeError):
    """Raised between steps when ``should_stop()`` says so."""


@dataclass
class Hooks:
    """``progress(step, total, preview_latents)`` after each step; ``should_stop()`` before it."""

    progress: Progress | None = None
    should_stop: Callable[[], bool] | None = None
    offset: int = 0  # steps already done by earlier passes (a cycle reports both passes as one bar)
    total: int | None = None

    def step(self, i: int, steps: int, preview: torch.Tensor | None) -> None:
        if self.progress is not None:
            self.progress(self.offset + i + 1, self.total or steps, preview)

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Interrupted("Sampling was interrupted.")


@dataclass
class EditSettings:
    steps: int
    guidance: float
    image_guidance: float = 1.0
    seed: int = 0
    shared_noise: bool = False  # every picture of the batch from the same noise (frames of a clip)


def initial_noise(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor,
                  shared: bool = False) -> torch.Tensor:
    """Gaussian noise drawn on the CPU so a seed gives the same image on every device; ``shared``:
    one draw for the whole batch (the first picture's noise, whatever the batch)."""
    if shared:
        one = torch.randn((1, *shape[1:]), generator=generator, dtype=like.dtype)
        return one.expand(shape).contiguous().to(like.device)
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def sample(model: EditModel, source: SourceCond, text: TextCond, negative: TextCond,
           settings: EditSettings, hooks: Hooks | None = None) -> torch.Tensor:
    """Denoise from seeded noise to the edited latents of ``source`` (the family's sampler)."""
    return model.sample(source, text, negative, settings, hooks or Hooks())
