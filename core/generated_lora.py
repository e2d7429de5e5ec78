"""LoRAs held as tensors: low-rank weight deltas on a denoiser's Linear layers, one per sample.

LoRA of Change generates a LoRA per before/after pair. Training applies a whole batch of them
at once through forward hooks (sample i gets ``y += B_i A_i x``), so gradients flow back into
the tensors and the hypernetwork that made them; sampling merges one LoRA into the weights
(``W + s B A``) so steps cost nothing extra, and puts the exact original weights back after.
A peft adapter cannot do the first: loading generated weights into it copies them and cuts
the gradient.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

# Every projection of self- and cross-attention: where the instruction acts in an
# InstructPix2Pix UNet, and small enough that a generated rank-4 LoRA stays cheap.
ATTENTION_PROJECTIONS = tuple(f"{attn}.{proj}" for attn in ("attn1", "attn2")
                              for proj in ("to_q", "to_k", "to_v", "to_out.0"))


def target_layers(denoiser: nn.Module, suffixes: Sequence[str] = ATTENTION_PROJECTIONS) -> dict[str, nn.Linear]:
    """The Linear layers whose qualified names end with one of ``suffixes``, in module order."""
    found = {name: module for name, module in denoiser.named_modules()
             if isinstance(module, nn.Linear) and name.endswith(tuple(suffixes))}
    if not found:
        raise ValueError(f"No Linear layer of {type(denoiser).__name__} ends with any of {list(suffixes)}.")
    return found


@dataclass
class LoraDelta:
    """Per layer, ``down`` [B, r, in] and ``up`` [B, out, r]: sample i changes W by up_i @ down_i."""

    down: dict[str, torch.Tensor]
    up: dict[str, torch.Tensor]

    @property
    def batch(self) -> int:
        return next(iter(self.down.values())).shape[0]

    def __neg__(self) -> "LoraDelta":
        """LoRA Reverse: the same change, undone."""
        return LoraDelta(self.down, {name: -up for name, up in self.up.items()})

    def weight(self, name: str) -> torch.Tensor:
        """The full weight change of one layer, [B, out, in]."""
        return self.up[name] @ self.down[name]

    @staticmethod
    def cat(deltas: Sequence["LoraDelta"]) -> "LoraDelta":
        """One batch from several (same layers and rank)."""
        return LoraDelta({k: torch.cat([d.down[k] for d in deltas]) for k in deltas[0].down},
                         {k: torch.cat([d.up[k] for d in deltas]) for k in deltas[0].up})

    def mean(self) -> "LoraDelta":
        """One LoRA whose weight change is the batch's mean change: the factors side by side along
        the rank, each up factor divided by the batch size."""
        n = self.batch
        down = {k: v.reshape(1, -1, v.shape[-1]) for k, v in self.down.items()}
        up = {k: (v / n).permute(1, 0, 2).reshape(1, v.shape[1], -1) for k, v in self.up.items()}
        return LoraDelta(down, up)

    def select(self, i: int) -> "LoraDelta":
        return LoraDelta({k: v[i : i + 1] for k, v in self.down.items()}, {k: v[i : i + 1] for k, v in self.up.items()})

    def detach(self) -> "LoraDelta":
        return LoraDelta({k: v.detach() for k, v in self.down.items()}, {k: v.detach() for k, v in self.up.items()})


@contextmanager
def applied(denoiser: nn.Module, delta: LoraDelta) -> Iterator[None]:
    """Run ``denoiser`` with ``delta`` added per sample, differentiably. A model batch that is k
    times the delta's (guidance branches stacked as [all samples, all samples, ...]) repeats it."""
    modules = dict(denoiser.named_modules())
    handles = [modules[name].register_forward_hook(_delta_hook(delta.down[name], delta.up[name]))
               for name in delta.down]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _delta_hook(down: torch.Tensor, up: torch.Tensor):
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        x = args[0]
        repeats = x.shape[0] // down.shape[0]
        d, u = (down, up) if repeats == 1 else (down.repeat(repeats, 1, 1), up.repeat(repeats, 1, 1))
        tokens = x.reshape(x.shape[0], -1, x.shape[-1])
        change = (tokens @ d.transpose(1, 2).to(x.dtype)) @ u.transpose(1, 2).to(x.dtype)
        return output + change.reshape(output.shape)
    return hook


@contextmanager
def merged(denoiser: nn.Module, loras: Sequence[tuple[LoraDelta, float]]) -> Iterator[None]:
    """Add ``strength * up @ down`` of each single-sample LoRA to the weights for the duration;
    the original weights (not a subtraction, which would drift in floating point) come back."""
    modules = dict(denoiser.named_modules())
    originals: dict[str, torch.Tensor] = {}
    try:
        with torch.no_grad():
            for delta, strength in loras:
                if delta.batch != 1:
                    raise ValueError(f"Only a single LoRA can be merged, not a batch of {delta.batch}.")
                for name in delta.down:
                    weight = modules[name].weight
                    originals.setdefault(name, weight.detach().clone())
                    weight += (strength * delta.weight(name)[0]).to(weight)
        yield
    finally:
        with torch.no_grad():
            for name, weight in originals.items():
                modules[name].weight.copy_(weight)
