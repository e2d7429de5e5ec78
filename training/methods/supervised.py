"""``supervised``: the paired baseline, trained in the InstructPix2Pix manner on true
(source, instruction, edited) triplets, which only the toy world can supply here.

Conditioning dropout follows InstructPix2Pix so that both guidance scales work at sampling
time: one uniform ``r`` per sample drops the instruction when ``r < 2p`` and the source when
``p <= r < 3p`` (instruction only, both, source only: ``p`` each). ``ip2p`` models train in
their own DDPM parameterisation exactly as diffusers' ``train_instruct_pix2pix.py``; ``toy``
and ``flow`` models with the flow-matching loss of the one time convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...core.conventions import add_noise, velocity
from ..data import Needs
from .base import per_sample
from .editor import EditorMethod, EditorOptions


@dataclass
class SupervisedOptions(EditorOptions):
    conditioning_dropout: float = 0.05


def dropout_masks(r: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(drop the instruction, drop the source) from one uniform draw per sample."""
    return r < 2 * p, (r >= p) & (r < 3 * p)


def ip2p_loss(model, source, target, prompts, noise, timesteps, r, p, generators=None) -> torch.Tensor:
    """The InstructPix2Pix training loss on pixels in -1..1 (diffusers' recipe, step by step)."""
    latents = model.vae.encode(target).latent_dist.sample(generators) * model.vae.config.scaling_factor
    noisy = model.scheduler.add_noise(latents, noise, timesteps)
    drop_text, drop_image = dropout_masks(r, p)
    text = model.encode_text(list(prompts)).embeds
    null = model.encode_text([""]).embeds
    text = torch.where(drop_text.reshape(-1, 1, 1), null, text)
    source_latents = model.vae.encode(source).latent_dist.mode() * (~drop_image).to(latents).reshape(-1, 1, 1, 1)
    prediction = model.unet_native(noisy, timesteps, text, source_latents)
    target_out = noise if model.scheduler.config.prediction_type == "epsilon" else \
        model.scheduler.get_velocity(latents, noise, timesteps)
    return F.mse_loss(prediction.float(), target_out.float())


class Supervised(EditorMethod):
    name = "supervised"
    Options = SupervisedOptions
    needs = Needs("pairs")

    def loss(self, model, batch, rngs):
        source = batch["source"].to(model.device, model.dtype)
        target = batch["target"].to(model.device, model.dtype)
        r = per_sample(rngs, (), torch.rand)
        p = self.options.conditioning_dropout
        if model.family == "ip2p":
            latent_shape = model.encode_source(source[:1]).shape[1:]
            noise = per_sample(rngs, latent_shape).to(source)
            timesteps = torch.stack([torch.randint(0, model.scheduler.config.num_train_timesteps, (), generator=g)
                                     for g in rngs]).to(source.device)
            loss = ip2p_loss(model, source, target, batch["instruction"], noise, timesteps, r, p, rngs)
            return loss, {"loss": loss.item()}
        x0 = model.encode_image(target)
        eps = per_sample(rngs, x0.shape[1:]).to(x0)
        t = torch.sigmoid(per_sample(rngs, ())).to(x0)
        drop_text, drop_image = dropout_masks(r, p)
        prompts = ["" if d else c for c, d in zip(batch["instruction"], drop_text.tolist())]
        text = self.instructions(model, prompts)
        cond = model.encode_source(source) * (~drop_image).to(x0).reshape(-1, 1, 1, 1)
        loss = F.mse_loss(model.predict(add_noise(x0, t, eps), t, text, cond).float(), velocity(x0, eps).float())
        return loss, {"loss": loss.item()}
