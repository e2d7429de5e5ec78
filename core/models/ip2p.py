"""The ``ip2p`` family: an InstructPix2Pix-style UNet with the source latent channel-concatenated."""

from __future__ import annotations

import torch

from ..samplers import EditSettings, Hooks, initial_noise
from .base import ModelInfo
from .conditioning import SourceCond, TextCond
from .sd import SdUnetModel, fresh_scheduler, step_kwargs


class Ip2pModel(SdUnetModel):
    """UNet2DConditionModel (8 input channels) + AutoencoderKL + CLIP text encoder.

    Target latents are VAE samples times the scaling factor; the source is the VAE mode
    *without* scaling, as InstructPix2Pix was trained. The unconditional image branch is a
    zero source.
    """

    family = "ip2p"
    pipelines = {"StableDiffusionInstructPix2PixPipeline": {}}
    original_layout = "InstructPix2Pix (SD 1.x, 8 UNet input channels)"
    reads = "the noisy latent and the source latent"

    @classmethod
    def default_info(cls) -> ModelInfo:
        # InstructPix2Pix's published settings (20 steps, text 7.5, image 1.5).
        return ModelInfo(family=cls.family, steps=20, guidance=7.5, image_guidance=1.5)

    @staticmethod
    def source_channels(latent: int) -> int:
        return latent

    @classmethod
    def _original_scheduler(cls):
        from diffusers import EulerAncestralDiscreteScheduler

        # InstructPix2Pix's published scheduler: Euler ancestral on SD 1.x's noise schedule.
        return EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                               steps_offset=1, prediction_type="epsilon")

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist.mode()

    def as_source(self, latents: torch.Tensor) -> SourceCond:
        return SourceCond(latents / self.vae.config.scaling_factor)  # the source is read unscaled

    def unet_input(self, latents: torch.Tensor, source: SourceCond) -> torch.Tensor:
        return torch.cat([latents, source.latents], dim=1)

    def no_source(self, like: torch.Tensor) -> SourceCond:
        return SourceCond(torch.zeros_like(like))

    def sample(self, source: SourceCond, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks) -> torch.Tensor:
        return sample_ip2p(self, source, text, negative, settings, hooks)


@torch.no_grad()
def sample_ip2p(model: Ip2pModel, source: SourceCond, text: TextCond, negative: TextCond,
                settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """InstructPix2Pix sampling with text and image guidance in one three-branch batch."""
    scheduler = fresh_scheduler(model, settings.steps, source.latents.device)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    b = len(source)
    latents = initial_noise(source.shape, generator, source.latents, settings.shared_noise) * scheduler.init_noise_sigma
    guided = settings.guidance > 1.0 and settings.image_guidance >= 1.0
    if guided:
        embeds = torch.cat([text.repeat_to(b).embeds, negative.repeat_to(b).embeds, negative.repeat_to(b).embeds])
        sources = SourceCond.cat([source, source, source.zeros()])
    else:
        embeds, sources = text.repeat_to(b).embeds, source
    extra = step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        hooks.check()
        branches = torch.cat([latents] * 3) if guided else latents
        out = model.unet_native(scheduler.scale_model_input(branches, t), t, embeds, sources)
        if guided:
            full, image_only, uncond = out.chunk(3)
            out = uncond + settings.guidance * (full - image_only) + settings.image_guidance * (image_only - uncond)
        stepped = scheduler.step(out, t, latents, **extra)
        latents = stepped.prev_sample
        hooks.step(i, settings.steps, getattr(stepped, "pred_original_sample", None))
    return latents
