"""What the Stable Diffusion 1.x families (``ip2p``, ``inpaint``) share: a DDPM-trained UNet that
reads extra source channels, SD's VAE and a CLIP text encoder, and SD's original single files.

A family says which channels follow the noisy latent (``unet_input``) and how it samples; the
text and picture encoders, the flow-convention ``predict``, the DDPM training loss and the
training-time draw are the same for both.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..conventions import DdpmBridge
from ..prompt_length import token_ids
from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond


class SdUnetModel(EditModel):
    """UNet2DConditionModel + AutoencoderKL + CLIP text encoder + a DDPM-family scheduler."""

    COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
    reads: ClassVar[str]  # what its UNet takes, for the message that refuses another

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, info: ModelInfo | None = None) -> None:
        super().__init__(info or self.default_info())
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.scheduler = scheduler
        self.denoiser = unet
        self.bridge = DdpmBridge(scheduler.alphas_cumprod, scheduler.config.prediction_type)
        latent = vae.config.latent_channels
        expected = latent + self.source_channels(latent)
        if unet.config.in_channels != expected:
            raise ValueError(f"An {self.family} UNet takes {self.reads} on channels ({expected}); this one takes "
                             f"{unet.config.in_channels}.")

    # -- what a family says ---------------------------------------------------------------
    @staticmethod
    def source_channels(latent: int) -> int:
        """The UNet's input channels after the noisy latent, for VAE latents of ``latent`` channels."""
        raise NotImplementedError

    def unet_input(self, latents: torch.Tensor, source: SourceCond) -> torch.Tensor:
        """The UNet's input: the noisy latents and the source channels, concatenated."""
        raise NotImplementedError

    @classmethod
    def _original_scheduler(cls):
        """The scheduler a model read from an original single file samples with (the file has none)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    @classmethod
    def reads_original_layout(cls, shapes: dict[str, tuple[int, ...]]) -> bool:
        from ..ldm_checkpoints import unet_input_channels  # diffusers' converters, only when a file needs them

        channels = unet_input_channels(shapes)
        return channels is not None and channels == 4 + cls.source_channels(4)

    @classmethod
    def from_original_layout(cls, state: dict[str, torch.Tensor], tokenizer, name: str) -> "SdUnetModel":
        from ..ldm_checkpoints import sd_parts

        return cls(**sd_parts(state, tokenizer), scheduler=cls._original_scheduler(),
                   info=replace(cls.default_info(), name=name))

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

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def unet_native(self, latents: torch.Tensor, timestep, embeds: torch.Tensor, source: SourceCond) -> torch.Tensor:
        """One UNet call in its own parameterisation (the samplers' fast path)."""
        return self.unet(self.unet_input(latents, source), timestep, encoder_hidden_states=embeds).sample

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        x_native, timestep, a = self.bridge.to_native(x_t, t)
        source = self.no_source(x_t) if source is None else source
        out = self.unet_native(x_native, timestep, text.repeat_to(x_t.shape[0]).embeds, source)
        return self.bridge.velocity_from_native(out, x_native, a.to(x_t.device))

    def no_source(self, like: torch.Tensor) -> SourceCond:
        """The text-to-image condition for latents shaped like ``like``."""
        raise NotImplementedError

    def denoising_loss(self, target: torch.Tensor, text: TextCond, source: SourceCond,
                       generators: list[torch.Generator]) -> torch.Tensor:
        """The UNet's own training loss (diffusers' ``train_instruct_pix2pix.py``): per sample its
        noise, then a uniform DDPM step, then the VAE's sample of the target; the UNet's epsilon or v
        error in its own parameterisation."""
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


def fresh_scheduler(model: SdUnetModel, steps: int, device):
    """A copy of the model's scheduler set to ``steps`` (sampling never changes the model's own)."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    scheduler.set_timesteps(steps, device=device)
    return scheduler


def step_kwargs(scheduler, generator: torch.Generator) -> dict:
    """The seeded generator for a stochastic scheduler's step (Euler ancestral), none for the others."""
    return {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
