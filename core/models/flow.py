"""The ``flow`` family: a FLUX-style rectified-flow transformer that sees the source image.

Source modes (``info.extra["source_mode"]``):
- ``offset``  — source tokens appended after the target tokens with the first position
  coordinate set to 1, as FLUX.1 Kontext does;
- ``same``    — source tokens appended with the *same* positions as the target (ByG);
- ``channel`` — source latent concatenated on channels (the transformer takes twice the input).
"""

from __future__ import annotations

import numpy as np
import torch

from ..prompt_length import token_ids
from ..samplers import EditSettings, Hooks, initial_noise
from .base import EditModel, ModelInfo
from .conditioning import SourceCond, TextCond

SOURCE_MODES = ("offset", "same", "channel")


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, h/2 * w/2, 4C]: 2x2 patches as tokens."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, d = tokens.shape
    x = tokens.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, d // 4, h, w)


def position_ids(h: int, w: int, frame: int, device, dtype) -> torch.Tensor:
    """[h/2 * w/2, 3] rows of (frame, row, col) for the packed grid."""
    rows = torch.arange(h // 2, device=device).repeat_interleave(w // 2)
    cols = torch.arange(w // 2, device=device).repeat(h // 2)
    return torch.stack([torch.full_like(rows, frame), rows, cols], dim=-1).to(dtype)


class FlowModel(EditModel):
    """FluxTransformer2DModel + AutoencoderKL + CLIP (pooled) and T5-style (tokens) encoders."""

    family = "flow"
    default_size = 1024
    pipelines = {"FluxKontextPipeline": {"source_mode": "offset"}}
    # every layer that carries the edit; x_embedder reads the source
    lora_targets = ("x_embedder", "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                    "to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2")
    COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler")

    def __init__(self, transformer, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2, scheduler,
                 info: ModelInfo | None = None) -> None:
        super().__init__(info or self.default_info())
        self.transformer, self.vae = transformer, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.text_encoder_2, self.tokenizer_2 = text_encoder_2, tokenizer_2
        self.scheduler = scheduler
        self.denoiser = transformer
        mode = self.source_mode
        if mode not in SOURCE_MODES:
            raise ValueError(f"Unknown source_mode {mode!r}; expected one of {SOURCE_MODES}.")
        expected = 4 * vae.config.latent_channels * (2 if mode == "channel" else 1)
        if transformer.config.in_channels != expected:
            raise ValueError(f"Source mode {mode!r} needs a transformer with {expected} input channels; "
                             f"this one has {transformer.config.in_channels}.")

    @classmethod
    def default_info(cls) -> ModelInfo:
        # FLUX.1 Kontext [dev]'s recommended settings.
        return ModelInfo(family=cls.family, steps=28, guidance=2.5, image_guidance=1.0,
                         extra={"source_mode": "offset", "max_sequence_length": 512})

    @property
    def source_mode(self) -> str:
        return self.info.extra.get("source_mode", "offset")

    @property
    def guidance_embedded(self) -> bool:
        """FLUX-dev style models take guidance as an input instead of a second branch."""
        return bool(self.transformer.config.guidance_embeds)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1) * 2  # VAE, then 2x2 packing

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> TextCond:
        ids = token_ids(self.tokenizer, prompts, encoder="the CLIP text encoder (the pooled prompt)")
        pooled = self.text_encoder(ids.to(self.text_encoder.device)).pooler_output
        ids_2 = token_ids(self.tokenizer_2, prompts, self.info.extra.get("max_sequence_length", 512),
                          "the T5 text encoder")
        embeds = self.text_encoder_2(ids_2.to(self.text_encoder_2.device))[0]
        return TextCond(embeds.to(self.dtype), pooled.to(self.dtype))

    def _vae_in(self, pixels: torch.Tensor):
        return self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist

    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - (self.vae.config.shift_factor or 0.0)) * self.vae.config.scaling_factor

    def encode_image(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._normalise(self._vae_in(pixels).sample(generator))

    def source_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._normalise(self._vae_in(pixels).mode())

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.to(self.vae.dtype) / self.vae.config.scaling_factor + (self.vae.config.shift_factor or 0.0)
        return self.vae.decode(z).sample

    def sample(self, source: SourceCond, text: TextCond, negative: TextCond, settings: EditSettings,
               hooks: Hooks) -> torch.Tensor:
        return sample_flow(self, source, text, negative, settings, hooks)

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text: TextCond,
                source: SourceCond | None = None, guidance: torch.Tensor | float | None = None) -> torch.Tensor:
        b, _, h, w = x_t.shape
        text = text.repeat_to(b)
        tokens = pack(x_t)
        ids = position_ids(h, w, 0, x_t.device, x_t.dtype)
        n = tokens.shape[1]
        if self.source_mode == "channel":
            tokens = pack(torch.cat([x_t, torch.zeros_like(x_t) if source is None else source.latents], dim=1))
        elif source is not None:
            frame = 1 if self.source_mode == "offset" else 0
            sh, sw = source.shape[-2:]
            tokens = torch.cat([tokens, pack(source.latents)], dim=1)
            ids = torch.cat([ids, position_ids(sh, sw, frame, x_t.device, x_t.dtype)])
        if self.guidance_embedded:
            g = self.info.guidance if guidance is None else guidance
            guidance = torch.as_tensor(g, device=x_t.device, dtype=torch.float32).reshape(-1).expand(b)
        else:
            guidance = None
        out = self.transformer(
            hidden_states=tokens,
            timestep=torch.as_tensor(t, device=x_t.device, dtype=x_t.dtype).reshape(-1).expand(b),
            guidance=guidance,
            pooled_projections=text.pooled,
            encoder_hidden_states=text.embeds,
            txt_ids=torch.zeros(text.embeds.shape[1], 3, device=x_t.device, dtype=x_t.dtype),
            img_ids=ids,
        ).sample
        return unpack(out[:, :n], h, w)


def flow_shift(image_seq_len: int, config) -> float:
    """FLUX's resolution-dependent shift: linear in the token count between two anchors."""
    lo, hi = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    s_lo, s_hi = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (s_hi - s_lo) / (hi - lo)
    return image_seq_len * slope + (s_lo - slope * lo)


@torch.no_grad()
def sample_flow(model: "FlowModel", source: SourceCond, text: TextCond, negative: TextCond,
                settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """Euler on the rectified flow. Guidance is embedded for guidance-distilled models and a
    batched conditional/unconditional pair otherwise."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    b, _, h, w = source.shape
    sigmas = np.linspace(1.0, 1 / settings.steps, settings.steps)
    scheduler.set_timesteps(sigmas=sigmas, mu=flow_shift((h // 2) * (w // 2), scheduler.config),
                            device=source.latents.device)
    scheduler.set_begin_index(0)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    latents = initial_noise(source.shape, generator, source.latents, settings.shared_noise)
    cfg = not model.guidance_embedded and settings.guidance > 1.0
    cond = TextCond.cat([text.repeat_to(b), negative.repeat_to(b)]) if cfg else text.repeat_to(b)
    src = SourceCond.cat([source, source]) if cfg else source
    for i, t in enumerate(scheduler.timesteps):
        hooks.check()
        x = torch.cat([latents, latents]) if cfg else latents
        timestep = t.expand(x.shape[0]).to(x.dtype) / 1000
        v = model.predict(x, timestep, cond, src, guidance=settings.guidance)
        if cfg:
            v_cond, v_uncond = v.chunk(2)
            v = v_uncond + settings.guidance * (v_cond - v_uncond)
        preview = latents - timestep[:b].reshape(-1, 1, 1, 1) * v
        latents = scheduler.step(v, t, latents).prev_sample
        hooks.step(i, settings.steps, preview)
    return latents
