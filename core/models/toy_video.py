"""The ``toy_video`` family: the toy UNet with temporal layers, over clips ``[B, 3, F, H, W]``.

Everything else is the toy family's: pixels as latents, the source clip on channels, the small
word-level text encoder, the same sampler. ``from_toy`` inflates a toy model: diffusers'
``UNet3DConditionModel`` (a temporal convolution after every ResNet, temporal attention beside
every spatial one and at its input) takes the 2-D weights, and each temporal layer's output
projection starts at zero, so the video model first draws every frame as the image model would
(and, the source channels being zero, is exactly its text-to-video self with ``source=None``).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from .toy import ToyModel

# The 3-D counterpart of each 2-D block the toy UNet is made of.
BLOCKS_3D = {"DownBlock2D": "DownBlock3D", "CrossAttnDownBlock2D": "CrossAttnDownBlock3D", "UpBlock2D": "UpBlock3D",
             "CrossAttnUpBlock2D": "CrossAttnUpBlock3D"}


def _with_adapters(unet: torch.nn.Module) -> torch.nn.Module:
    """``unet`` taking peft adapters as the 2-D UNet does (diffusers' PeftAdapterMixin, which
    UNet3DConditionModel lacks); its class keeps the name and module it is saved and loaded by."""
    from diffusers.loaders.peft import PeftAdapterMixin

    cls = type(unet)
    if not issubclass(cls, PeftAdapterMixin):
        unet.__class__ = type(cls.__name__, (PeftAdapterMixin, cls), {"__module__": cls.__module__})
    return unet


class ToyVideoModel(ToyModel):
    family = "toy_video"
    frames = True
    # The toy family's layers, and the temporal ones: their attention and feed-forward layers share
    # the 2-D names; a temporal convolution's conv1..conv4 are (norm, SiLU[, dropout], Conv3d)
    # sequences, not layers, so the ResNets' convolutions are named by their place.
    lora_targets = tuple(t for t in ToyModel.lora_targets if t not in ("conv1", "conv2")) + tuple(
        f"resnets.{i}.conv{j}" for i in range(4) for j in (1, 2)) + ("conv1.2", "conv2.3", "conv3.3", "conv4.3")
    reads = "the noisy clip and the source clip"

    def __init__(self, unet, text_encoder, tokenizer, info=None) -> None:
        super().__init__(_with_adapters(unet), text_encoder, tokenizer, info)
        for module in unet.modules():  # diffusers fixes the temporal convolutions' dropout at 0.1;
            if isinstance(module, torch.nn.Dropout):  # a toy model trains without, every draw per sample
                module.p = 0.0

    def check_clip(self, pixels: torch.Tensor) -> None:
        if pixels.dim() != 5:
            raise ValueError(f"A video model reads clips [B, 3, F, H, W]; got a tensor of shape {tuple(pixels.shape)}.")

    def encode_image(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_clip(pixels)
        return super().encode_image(pixels)

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        self.check_clip(pixels)
        return super().source_latents(pixels)

    @classmethod
    def from_toy(cls, model: ToyModel) -> "ToyVideoModel":
        """A video model with ``model``'s weights (copied) and temporal layers that start silent."""
        from diffusers import UNet3DConditionModel  # building needs the stack; running a built model does not

        c = model.unet.config
        unet = UNet3DConditionModel(
            sample_size=c.sample_size, in_channels=c.in_channels, out_channels=c.out_channels,
            layers_per_block=c.layers_per_block, block_out_channels=tuple(c.block_out_channels),
            down_block_types=tuple(BLOCKS_3D[b] for b in c.down_block_types),
            up_block_types=tuple(BLOCKS_3D[b] for b in c.up_block_types),
            cross_attention_dim=c.cross_attention_dim, attention_head_dim=c.attention_head_dim,
            norm_num_groups=c.norm_num_groups).to(model.unet.dtype)
        own = unet.state_dict()
        # 1x1 convolutions of the 2-D attention projections are the 3-D model's linear layers
        state = {k: v.reshape(own[k].shape) for k, v in model.unet.state_dict().items()}
        missing = unet.load_state_dict(state, strict=False).missing_keys
        if not all(k.startswith("transformer_in.") or ".temp_" in k for k in missing):
            raise ValueError(f"The toy UNet does not map onto a 3-D UNet: {missing[:3]} have no 2-D weights.")
        with torch.no_grad():
            for name, module in unet.named_modules():
                if name.startswith("transformer_in") or ".temp_attentions." in name:
                    if name.endswith("proj_out"):
                        module.weight.zero_()
                        module.bias.zero_()
        info = replace(model.info, family=cls.family, extra=dict(model.info.extra))
        return cls(unet.eval(), copy.deepcopy(model.text_encoder), model.tokenizer, info)
