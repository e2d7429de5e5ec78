"""The ``toy_inpaint`` family: the toy UNet reading the noisy picture, the mask and the masked
source on channels (3 + 1 + 3), in pixel space like the toy model itself.

``from_toy`` makes one from a toy model: its weights, with the mask and masked-source channels
of ``conv_in`` at zero, so the inpainter starts as that model's text-to-image self.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from .conditioning import SourceCond
from .toy import ToyModel


class ToyInpaintModel(ToyModel):
    family = "toy_inpaint"
    inpaints = True
    lora_targets = ()  # ByG's edit LoRA is for editors
    reads = "the noisy image, the mask and the masked source"

    @staticmethod
    def source_channels(image_channels: int) -> int:
        return 1 + image_channels

    def masked_source(self, blanked: torch.Tensor, regenerate: torch.Tensor) -> SourceCond:
        return SourceCond(blanked.to(self.device, self.dtype), regenerate.to(self.device, self.dtype))

    def unet_input(self, x_t: torch.Tensor, source: SourceCond) -> torch.Tensor:
        return torch.cat([x_t, source.mask, source.latents], dim=1)

    def no_source(self, like: torch.Tensor) -> SourceCond:
        """Everything masked: the model paints the whole picture from the text."""
        return SourceCond(torch.zeros_like(like), torch.ones_like(like[:, :1]))

    @classmethod
    def from_toy(cls, model: ToyModel) -> "ToyInpaintModel":
        """An inpainter with ``model``'s weights (copied) whose new input channels start at zero."""
        unet = copy.deepcopy(model.unet)
        old = unet.conv_in
        image = unet.config.out_channels
        conv = nn.Conv2d(image + cls.source_channels(image), old.out_channels, old.kernel_size, old.stride,
                         old.padding).to(old.weight)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, :image] = old.weight[:, :image]  # the noisy picture's channels, as the model reads them
            conv.bias.copy_(old.bias)
        unet.conv_in = conv
        unet.register_to_config(in_channels=conv.in_channels)
        info = replace(model.info, family=cls.family, extra=dict(model.info.extra))
        return cls(unet, copy.deepcopy(model.text_encoder), model.tokenizer, info)
