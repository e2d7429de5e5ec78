"""The ``ip2p`` family: an InstructPix2Pix-style UNet with the source latent channel-concatenated."""

from __future__ import annotations

import torch

from ..conventions import DdpmBridge
from ..prompt_length import token_ids
from .base import EditModel, ModelInfo, TextCond


class Ip2pModel(EditModel):
    """UNet2DConditionModel (8 input channels) + AutoencoderKL + CLIP text encoder.

    Target latents are VAE samples times the scaling factor; the source is the VAE mode
    *without* scaling, as InstructPix2Pix was trained. The unconditional image branch is a
    zero source.
    """

    family = "ip2p"
    COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, info: ModelInfo | None = None) -> None:
        super().__init__(info or self.default_info())
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.scheduler = scheduler
        self.denoiser = unet
        self.bridge = DdpmBridge(scheduler.alphas_cumprod, scheduler.config.prediction_type)
        latent = vae.config.latent_channels
        if unet.config.in_channels != 2 * latent:
            raise ValueError(f"An ip2p UNet takes {2 * latent} input channels (noisy + source latent); "
                             f"this one takes {unet.config.in_channels}.")

    @classmethod
    def default_info(cls) -> ModelInfo:
        # InstructPix2Pix's published settings (20 steps, text 7.5, image 1.5).
        return ModelInfo(family=cls.family, steps=20, guidance=7.5, image_guidance=1.5)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> TextCond:
        ids = token_ids(self.tokenizer, prompts)
        embeds = self.text_encoder(ids.to(self.text_encoder.device))[0]
        return TextCond(embeds.to(self.dtype))

    def encode_image(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        dist = self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist
        return dist.sample(generator) * self.vae.config.scaling_factor

    def encode_source(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist.mode()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def unet_native(self, latents: torch.Tensor, timestep, embeds: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """One UNet call in its own parameterisation (the sampler's fast path)."""
        return self.unet(torch.cat([latents, source], dim=1), timestep, encoder_hidden_states=embeds).sample

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        x_native, timestep, a = self.bridge.to_native(x_t, t)
        source = torch.zeros_like(x_t) if source is None else source
        out = self.unet_native(x_native, timestep, text.repeat_to(x_t.shape[0]).embeds, source)
        return self.bridge.velocity_from_native(out, x_native, a.to(x_t.device))
