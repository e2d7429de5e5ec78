"""Exponential moving average of trainable weights, with a warm-up so that short runs are not
dominated by the random initialisation (decay_t = min(decay, (1 + t) / (10 + t)))."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    def __init__(self, params: dict[str, nn.Parameter], decay: float) -> None:
        self.params, self.decay, self.updates = params, decay, 0
        self.shadow = {k: p.detach().clone() for k, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(list(self.shadow.values()), [p.detach() for p in self.params.values()], 1 - d)

    @contextmanager
    def swapped_in(self):
        """Use the averaged weights inside the block (sampling, export), then restore."""
        saved = {k: p.detach().clone() for k, p in self.params.items()}
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(self.shadow[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in self.params.items():
                    p.copy_(saved[k])

    def state(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load(self, state: dict[str, torch.Tensor], updates: int) -> None:
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
        self.updates = updates
