"""``supervised``: the paired baseline, trained in the InstructPix2Pix manner on true
(source, instruction, edited) triplets: the toy world's, or a ``pairs`` file's.

Conditioning dropout follows InstructPix2Pix so that both guidance scales work at sampling
time: one uniform ``r`` per sample drops the instruction when ``r < 2p`` and the source when
``p <= r < 3p`` (instruction only, both, source only: ``p`` each). The loss is the family's
(``EditModel.denoising_loss``): ``ip2p`` models train in their own DDPM parameterisation exactly
as diffusers' ``train_instruct_pix2pix.py``, ``toy`` and ``flow`` models with the flow-matching
loss of the one time convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import Needs
from .base import per_sample
from .editor import EditorMethod, EditorOptions


@dataclass
class SupervisedOptions(EditorOptions):
    conditioning_dropout: float = 0.05


def dropout_masks(r: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(drop the instruction, drop the source) from one uniform draw per sample."""
    return r < 2 * p, (r >= p) & (r < 3 * p)


class Supervised(EditorMethod):
    name = "supervised"
    Options = SupervisedOptions
    needs = Needs("pairs")

    def loss(self, model, batch, rngs, state):
        source = batch["source"].to(model.device, model.dtype)
        target = batch["target"].to(model.device, model.dtype)
        drop_text, drop_image = dropout_masks(per_sample(rngs, (), torch.rand), self.options.conditioning_dropout)
        text = self.instructions(model, ["" if d else c for c, d in zip(batch["instruction"], drop_text.tolist())])
        cond = model.encode_source(source).kept(~drop_image)
        loss = model.denoising_loss(target, text, cond, rngs)  # the family's own loss and draws
        return loss, {"loss": loss.item()}
