"""Sampling loops, one per family, with progress and stop hooks.

Each loop reuses the encoded source and text for every step and batches its guidance
branches into one model call per step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .models.base import EditModel, TextCond
from .models.flow import FlowModel
from .models.ip2p import Ip2pModel
from .models.toy import ToyModel

Progress = Callable[[int, int, "torch.Tensor | None"], None]


class Interrupted(RuntimeError):
    """Raised between steps when ``should_stop()`` says so."""


@dataclass
class Hooks:
    """``progress(step, total, preview_latents)`` after each step; ``should_stop()`` before it."""

    progress: Progress | None = None
    should_stop: Callable[[], bool] | None = None
    offset: int = 0  # steps already done by earlier passes (a cycle reports both passes as one bar)
    total: int | None = None

    def step(self, i: int, steps: int, preview: torch.Tensor | None) -> None:
        if self.progress is not None:
            self.progress(self.offset + i + 1, self.total or steps, preview)

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Interrupted("Sampling was interrupted.")


@dataclass
class EditSettings:
    steps: int
    guidance: float
    image_guidance: float = 1.0
    seed: int = 0


def initial_noise(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Gaussian noise drawn on the CPU so a seed gives the same image on every device."""
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def sample(model: EditModel, source: torch.Tensor, text: TextCond, negative: TextCond,
           settings: EditSettings, hooks: Hooks | None = None) -> torch.Tensor:
    """Denoise from seeded noise to the edited latents of ``source`` (the family's sampler)."""
    return SAMPLERS[model.family](model, source, text, negative, settings, hooks or Hooks())


@torch.no_grad()
def sample_ip2p(model: Ip2pModel, source: torch.Tensor, text: TextCond, negative: TextCond,
                settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """InstructPix2Pix sampling with text and image guidance in one three-branch batch."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    scheduler.set_timesteps(settings.steps, device=source.device)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    b = source.shape[0]
    latents = initial_noise(source.shape, generator, source) * scheduler.init_noise_sigma
    guided = settings.guidance > 1.0 and settings.image_guidance >= 1.0
    if guided:
        embeds = torch.cat([text.repeat_to(b).embeds, negative.repeat_to(b).embeds, negative.repeat_to(b).embeds])
        sources = torch.cat([source, source, torch.zeros_like(source)])
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


def flow_shift(image_seq_len: int, config) -> float:
    """FLUX's resolution-dependent shift: linear in the token count between two anchors."""
    lo, hi = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    s_lo, s_hi = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (s_hi - s_lo) / (hi - lo)
    return image_seq_len * slope + (s_lo - slope * lo)


@torch.no_grad()
def sample_flow(model: FlowModel, source: torch.Tensor, text: TextCond, negative: TextCond,
                settings: EditSettings, hooks: Hooks) -> torch.Tensor:
    """Euler on the rectified flow. Guidance is embedded for guidance-distilled models and a
    batched conditional/unconditional pair otherwise."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)
    b, _, h, w = source.shape
    sigmas = np.linspace(1.0, 1 / settings.steps, settings.steps)
    scheduler.set_timesteps(sigmas=sigmas, mu=flow_shift((h // 2) * (w // 2), scheduler.config),
                            device=source.device)
    scheduler.set_begin_index(0)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    latents = initial_noise(source.shape, generator, source)
    cfg = not model.guidance_embedded and settings.guidance > 1.0
    cond = TextCond.cat([text.repeat_to(b), negative.repeat_to(b)]) if cfg else text.repeat_to(b)
    src = torch.cat([source, source]) if cfg else source
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


@torch.no_grad()
def sample_toy(model: ToyModel, source: torch.Tensor | None, text: TextCond, negative: TextCond,
               settings: EditSettings, hooks: Hooks, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Euler on uniform times with up to three guidance branches, each only when its scale
    asks for it: (text, source), (empty, source) and (empty, no source). ``source=None`` is
    text-to-image sampling of ``shape``."""
    like = source if source is not None else torch.zeros(shape, device=model.device, dtype=model.dtype)
    b = like.shape[0]
    image_guidance = settings.image_guidance if source is not None else 1.0
    text_only = settings.guidance != 1.0 or image_guidance != 1.0
    no_source = image_guidance != 1.0
    src = torch.zeros_like(like) if source is None else source
    conds, sources = [text.repeat_to(b)], [src]
    if text_only:
        conds, sources = conds + [negative.repeat_to(b)], sources + [src]
    if no_source:
        conds, sources = conds + [negative.repeat_to(b)], sources + [torch.zeros_like(src)]
    cond, sources = TextCond.cat(conds), torch.cat(sources)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    x = initial_noise(like.shape, generator, like)
    times = torch.linspace(1.0, 0.0, settings.steps + 1)
    for i in range(settings.steps):
        hooks.check()
        t, t_next = times[i].item(), times[i + 1].item()
        v = model.predict(torch.cat([x] * len(conds)), torch.tensor(t), cond, sources).chunk(len(conds))
        if no_source:
            v = v[2] + settings.guidance * (v[0] - v[1]) + image_guidance * (v[1] - v[2])
        elif text_only:
            v = v[1] + settings.guidance * (v[0] - v[1])
        else:
            v = v[0]
        preview = x - t * v
        x = x + (t_next - t) * v
        hooks.step(i, settings.steps, preview)
    return x


SAMPLERS = {"ip2p": sample_ip2p, "flow": sample_flow, "toy": sample_toy}
