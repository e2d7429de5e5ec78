"""The ``ip2p`` family: an InstructPix2Pix-style UNet with the source latent channel-concatenated."""

from __future__ import annotations

import inspect
from dataclasses import replace

import torch
import torch.nn.functional as F

from ..conventions import DdpmBridge
from ..prompt_length import token_ids
from ..samplers import EditSettings, Hooks, initial_noise
from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond


class Ip2pModel(EditModel):
    """UNet2DConditionModel (8 input channels) + AutoencoderKL + CLIP text encoder.

    Target latents are VAE samples times the scaling factor; the source is the VAE mode
    *without* scaling, as InstructPix2Pix was trained. The unconditional image branch is a
    zero source.
    """

    family = "ip2p"
    pipelines = {"StableDiffusionInstructPix2PixPipeline": {}}
    original_layout = "InstructPix2Pix (SD 1.x, 8 UNet input channels)"
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

    @classmethod
    def reads_original_layout(cls, shapes: dict[str, tuple[int, ...]]) -> bool:
        from ..ldm_checkpoints import unet_input_channels  # diffusers' converters, only when a file needs them

        return unet_input_channels(shapes) == 8

    @classmethod
    def from_original_layout(cls, state: dict[str, torch.Tensor], tokenizer, name: str) -> "Ip2pModel":
        from diffusers import EulerAncestralDiscreteScheduler

        from ..ldm_checkpoints import sd_parts

        # InstructPix2Pix's published scheduler: Euler ancestral on SD 1.x's noise schedule.
        scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                    steps_offset=1, prediction_type="epsilon")
        return cls(**sd_parts(state, tokenizer), scheduler=scheduler, info=replace(cls.default_info(), name=name))

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

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist.mode()

    def as_source(self, latents: torch.Tensor) -> SourceCond:
        return SourceCond(latents / self.vae.config.scaling_factor)  # the source is read unscaled

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def unet_native(self, latents: torch.Tensor, timestep, embeds: torch.Tensor, source: SourceCond) -> torch.Tensor:
        """One UNet call in its own parameterisation (the sampler's fast path)."""
        return self.unet(torch.cat([latents, source.latents], dim=1), timestep, encoder_hidden_states=embeds).sample

    def denoising_loss(self, target: torch.Tensor, text: TextCond, source: SourceCond,
                       generators: list[torch.Generator]) -> torch.Tensor:
        """InstructPix2Pix's own training loss (diffusers' ``train_instruct_pix2pix.py``): per sample
        its noise, then a uniform DDPM step, then the VAE's sample of the target; the UNet's epsilon
        or v error in its own parameterisation."""
        dist = self.vae.encode(target).latent_dist
        noise = torch.stack([torch.randn(dist.mean.shape[1:], generator=g) for g in generators]).to(target)
        timesteps = self._ddpm_steps(generators).to(target.device)
        latents = dist.sample(generators) * self.vae.config.scaling_factor
        prediction = self.unet_native(self.scheduler.add_noise(latents, noise, timesteps), timesteps, text.embeds,
                                      source)
        wanted = noise if self.scheduler.config.prediction_type == "epsilon" else \
            self.scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(prediction.float(), wanted.float())

    def training_times(self, generators: list[torch.Generator]) -> torch.Tensor:
        """The UNet's own DDPM steps drawn uniformly, as its training drew them, as flow times."""
        return self.bridge.flow_time(self._ddpm_steps(generators))

    def _ddpm_steps(self, generators: list[torch.Generator]) -> torch.Tensor:
        """One DDPM timestep per sample, uniform over the training schedule."""
        steps = self.scheduler.config.num_train_timesteps
        return torch.stack([torch.randint(0, steps, (), generator=g) for g in generators])

    def sample(self, source: SourceCond, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks) -> torch.Tensor:
        return sample_ip2p(self, source, text, negative, settings, hooks)

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        x_native, timestep, a = self.bridge.to_native(x_t, t)
        source = SourceCond(torch.zeros_like(x_t)) if source is None else source
        out = self.unet_native(x_native, timestep, text.repeat_to(x_t.shape[0]).embeds, source)
        return self.bridge.velocity_from_native(out, x_native, a.to(x_t.device))


@torch.no_grad()
def sample_ip2p(model: "Ip2pModel", source: SourceCond, text: TextCond, negative: TextCond,
                settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """InstructPix2Pix sampling with text and image guidance in one three-branch batch."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    scheduler.set_timesteps(settings.steps, device=source.latents.device)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    b = len(source)
    latents = initial_noise(source.shape, generator, source.latents) * scheduler.init_noise_sigma
    guided = settings.guidance > 1.0 and settings.image_guidance >= 1.0
    if guided:
        embeds = torch.cat([text.repeat_to(b).embeds, negative.repeat_to(b).embeds, negative.repeat_to(b).embeds])
        sources = SourceCond.cat([source, source, source.zeros()])
    else:
        embeds, sources = text.repeat_to(b).embeds, source
    step_kwargs = {"generator": generator} if "generator" in _step_params(scheduler) else {}
    for i, t in enumerate(scheduler.timesteps):
        hooks.check()
        branches = torch.cat([latents] * 3) if guided else latents
        out = model.unet_native(scheduler.scale_model_input(branches, t), t, embeds, sources)
        if guided:
            full, image_only, uncond = out.chunk(3)
            out = uncond + settings.guidance * (full - image_only) + settings.image_guidance * (image_only - uncond)
        stepped = scheduler.step(out, t, latents, **step_kwargs)
        latents = stepped.prev_sample
        hooks.step(i, settings.steps, getattr(stepped, "pred_original_sample", None))
    return latents


def _step_params(scheduler) -> set[str]:
    return set(inspect.signature(scheduler.step).parameters)
