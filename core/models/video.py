"""The ``video`` family: a Wan-style 3-D flow transformer that edits a whole clip at once.

Latents are ``[B, C, F, h, w]``: Wan's causal video VAE keeps the first frame and compresses
every 4 frames after it into one latent frame (clips of 4k + 1 frames), 8x in space. The source
clip's latents are concatenated to the noisy ones on channels, as instruction-video editors do; a
transformer made from a text-to-video one by ``add_source_channels`` reads nothing from those
channels at first, so with ``source=None`` (zeros there) the editor is its text-to-video self,
sampled as diffusers' ``WanPipeline`` samples.
"""

from __future__ import annotations

import html
import re

import torch
from torch import nn

from ..prompt_length import token_ids
from ..samplers import EditSettings, Hooks, initial_noise
from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond


class VideoModel(EditModel):
    """WanTransformer3DModel + AutoencoderKLWan + a T5-style (UMT5) text encoder."""

    family = "video"
    default_size = 480
    frames = True
    # every layer that carries the edit; patch_embedding reads the source
    lora_targets = ("patch_embedding", "to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
    COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")

    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler, info: ModelInfo | None = None) -> None:
        super().__init__(info or self.default_info())
        self.transformer, self.vae, self.text_encoder, self.tokenizer = transformer, vae, text_encoder, tokenizer
        self.scheduler = scheduler
        self.denoiser = transformer
        expected = 2 * vae.config.z_dim
        if transformer.config.in_channels != expected:
            raise ValueError(f"A video editor's transformer reads the noisy and the source latents ({expected} "
                             f"channels); this one reads {transformer.config.in_channels}. Make one from a "
                             "text-to-video transformer with add_source_channels.")

    @classmethod
    def default_info(cls) -> ModelInfo:
        # Wan 2.1 text-to-video's recommended settings.
        return ModelInfo(family=cls.family, steps=50, guidance=5.0, image_guidance=1.0,
                         extra={"max_sequence_length": 512})

    @property
    def factor(self) -> int:
        return self.vae.config.scale_factor_spatial * self.transformer.config.patch_size[1]

    @property
    def frame_stride(self) -> int:
        """Frames after the first that make one latent frame: clips have 1 + k·stride frames."""
        return self.vae.config.scale_factor_temporal

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> TextCond:
        """Per-token embeddings of each cleaned prompt, zero past its last token (as Wan reads them)."""
        length = self.info.extra.get("max_sequence_length", 512)
        ids = token_ids(self.tokenizer, [_clean(p) for p in prompts], length, "the T5 text encoder")
        ids = ids.to(self.text_encoder.device)
        mask = (ids != self.tokenizer.pad_token_id).long()
        embeds = self.text_encoder(ids, mask).last_hidden_state
        return TextCond((embeds * mask[..., None]).to(self.dtype))

    def _statistics(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean).view(shape).to(like)
        std = torch.tensor(self.vae.config.latents_std).view(shape).to(like)
        return mean, std

    def _vae_in(self, pixels: torch.Tensor):
        self.check_clip(pixels)
        return self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist

    def check_clip(self, pixels: torch.Tensor) -> None:
        """Pixels must be [B, 3, F, H, W] with F = 1 + k·frame_stride."""
        if pixels.dim() != 5:
            raise ValueError(f"A video model reads clips [B, 3, F, H, W]; got a tensor of shape {tuple(pixels.shape)}.")
        if (pixels.shape[2] - 1) % self.frame_stride:
            raise ValueError(f"A clip for this video model has 1 + a multiple of {self.frame_stride} frames "
                             f"(e.g. {1 + 2 * self.frame_stride}); this one has {pixels.shape[2]}.")

    def encode_image(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self._vae_in(pixels).sample(generator)
        mean, std = self._statistics(z)
        return (z - mean) / std

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        z = self._vae_in(pixels).mode()
        mean, std = self._statistics(z)
        return (z - mean) / std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        mean, std = self._statistics(latents.to(self.vae.dtype))
        return self.vae.decode(latents.to(self.vae.dtype) * std + mean).sample

    def sample(self, source: SourceCond | None, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        return sample_video(self, source, text, negative, settings, hooks, shape)

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None) -> torch.Tensor:
        b = x_t.shape[0]
        src = torch.zeros_like(x_t) if source is None else source.latents
        timestep = torch.as_tensor(t, device=x_t.device, dtype=x_t.dtype).reshape(-1).expand(b) * 1000
        return self.transformer(hidden_states=torch.cat([x_t, src], dim=1), timestep=timestep,
                                encoder_hidden_states=text.repeat_to(b).embeds).sample


def _clean(prompt: str) -> str:
    """Unescape HTML and collapse whitespace, as Wan cleans its prompts."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(prompt)).strip()).strip()


@torch.no_grad()
def sample_video(model: VideoModel, source: SourceCond | None, text: TextCond, negative: TextCond,
                 settings: EditSettings, hooks: Hooks, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """The model's own scheduler over its flow times, text guidance as a batched pair; ``source=None``
    is text-to-video sampling of latents ``shape``."""
    like = source.latents if source is not None else torch.zeros(shape, device=model.device, dtype=model.dtype)
    b = like.shape[0]
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    scheduler.set_timesteps(settings.steps, device=like.device)
    scheduler.set_begin_index(0)
    latents = initial_noise(like.shape, torch.Generator("cpu").manual_seed(settings.seed), like.float(),
                            settings.shared_noise)
    cfg = settings.guidance > 1.0
    cond = TextCond.cat([text.repeat_to(b), negative.repeat_to(b)]) if cfg else text.repeat_to(b)
    src = None if source is None else (SourceCond.cat([source, source]) if cfg else source)
    for i, t in enumerate(scheduler.timesteps):
        hooks.check()
        x = torch.cat([latents, latents]) if cfg else latents
        timestep = (t / 1000).expand(x.shape[0])
        v = model.predict(x.to(model.dtype), timestep.to(model.dtype), cond, src).float()
        if cfg:
            v_cond, v_uncond = v.chunk(2)
            v = v_uncond + settings.guidance * (v_cond - v_uncond)
        preview = latents - timestep[:b].reshape(-1, 1, 1, 1, 1) * v
        latents = scheduler.step(v, t, latents).prev_sample
        hooks.step(i, settings.steps, preview)
    return latents.to(model.dtype)


def add_source_channels(transformer: nn.Module) -> nn.Module:
    """A text-to-video transformer as an editor: a copy reading twice its input channels (noisy, then
    source latents), the source's patch-embedding weights zero so it starts as the text-to-video model."""
    config = dict(transformer.config)
    config["in_channels"] = 2 * transformer.config.in_channels
    editor = type(transformer).from_config(config)
    state = transformer.state_dict()
    weight = state["patch_embedding.weight"]
    state["patch_embedding.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)
    editor.load_state_dict(state)  # in float32 as built; a caller casts it as it cast the original
    return editor.eval()
