"""The ``inpaint`` family: a Stable Diffusion inpainting UNet, which reads the noisy latent, the
mask and the masked source's latent on channels (4 + 1 + 4 for SD 1.5 inpainting).

The source is encoded as diffusers' ``StableDiffusionInpaintPipeline`` prepares it: the mask
binarised at 0.5, the picture blanked (zero) where it is 1, the mask resized to the latents by
nearest neighbour. One departure: the masked picture's latent is the VAE's mode, not a sample,
so a seed gives one picture whatever else the generator draws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..samplers import EditSettings, Hooks, initial_noise
from .base import ModelInfo
from .conditioning import SourceCond, TextCond
from .sd import SdUnetModel, fresh_scheduler, step_kwargs


class InpaintModel(SdUnetModel):
    family = "inpaint"
    pipelines = {"StableDiffusionInpaintPipeline": {}}
    original_layout = "SD 1.x inpainting (9 UNet input channels)"
    inpaints = True
    reads = "the noisy latent, the mask and the masked source's latent"

    @classmethod
    def default_info(cls) -> ModelInfo:
        # SD inpainting's usual settings: 20 steps, text guidance 7.5 (it has no image guidance).
        return ModelInfo(family=cls.family, steps=20, guidance=7.5, image_guidance=1.0)

    @staticmethod
    def source_channels(latent: int) -> int:
        return 1 + latent

    @classmethod
    def _original_scheduler(cls):
        from diffusers import DDIMScheduler

        # DDIM on SD 1.x's noise schedule: deterministic, and good at 20 steps.
        return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                             clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")

    def masked_source(self, blanked: torch.Tensor, regenerate: torch.Tensor) -> SourceCond:
        blanked = blanked.to(self.vae.device, self.vae.dtype)
        masked = self.vae.encode(blanked).latent_dist.mode() * self.vae.config.scaling_factor
        return SourceCond(masked, F.interpolate(regenerate.to(masked), size=masked.shape[-2:]))

    def unet_input(self, latents: torch.Tensor, source: SourceCond) -> torch.Tensor:
        return torch.cat([latents, source.mask, source.latents], dim=1)

    def no_source(self, like: torch.Tensor) -> SourceCond:
        """Everything masked: the model paints the whole picture from the text."""
        b, _, h, w = like.shape
        size = (h * self.factor, w * self.factor)
        return self.encode_source(torch.zeros(b, 3, *size, device=like.device), torch.ones(b, 1, *size))

    def sample(self, source: SourceCond, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks) -> torch.Tensor:
        return sample_inpaint(self, source, text, negative, settings, hooks)


@torch.no_grad()
def sample_inpaint(model: InpaintModel, source: SourceCond, text: TextCond, negative: TextCond,
                   settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """Text-guided inpainting: the (negative, prompt) pair in one batch when guidance asks for it,
    the mask and masked source beside the noisy latents at every step."""
    scheduler = fresh_scheduler(model, settings.steps, source.latents.device)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    b = len(source)
    latents = initial_noise(source.shape, generator, source.latents, settings.shared_noise) * scheduler.init_noise_sigma
    guided = settings.guidance > 1.0
    if guided:
        embeds = torch.cat([negative.repeat_to(b).embeds, text.repeat_to(b).embeds])
        sources = SourceCond.cat([source, source])
    else:
        embeds, sources = text.repeat_to(b).embeds, source
    extra = step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        hooks.check()
        branches = torch.cat([latents] * 2) if guided else latents
        out = model.unet_native(scheduler.scale_model_input(branches, t), t, embeds, sources)
        if guided:
            uncond, cond = out.chunk(2)
            out = uncond + settings.guidance * (cond - uncond)
        stepped = scheduler.step(out, t, latents, **extra)
        latents = stepped.prev_sample
        hooks.step(i, settings.steps, getattr(stepped, "pred_original_sample", None))
    return latents
