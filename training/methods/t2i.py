"""``t2i``: the toy base model, flow matching on images and their captions only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...core.conventions import add_noise, velocity
from ...core.samplers import EditSettings
from ..data import Needs
from ..evaluate import evaluate_captions, sample_captions
from .base import Method, per_sample


@dataclass
class T2IOptions:
    caption_dropout: float = 0.1  # share of empty captions, for classifier-free guidance
    validate_samples: int = 32  # validation-split captions sampled at each validation
    validate_steps: int = 20
    validate_guidance: float = 4.0


class TextToImage(Method):
    name = "t2i"
    Options = T2IOptions
    needs = Needs("captions")
    pictures = "image"  # the item key of what it learns to draw

    def trainable(self, model):
        return {"unet": model.unet, "text_encoder": model.text_encoder}

    def loss(self, model, batch, rngs, state):
        x0 = batch[self.pictures].to(model.device, model.dtype)
        eps = per_sample(rngs, x0.shape[1:]).to(x0)
        t = torch.sigmoid(per_sample(rngs, ())).to(x0)  # logit-normal: most samples mid-way
        keep = per_sample(rngs, (), torch.rand) >= self.options.caption_dropout
        captions = [c if k else "" for c, k in zip(batch["caption"], keep.tolist())]
        v = model.predict(add_noise(x0, t, eps), t, model.text_embeddings(captions))
        loss = F.mse_loss(v.float(), velocity(x0, eps).float())
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, model, rows):
        """Caption accuracy of text-to-image samples of validation-split captions (``evaluate_captions``),
        or samples of the held-out rows' captions."""
        model.text_cache.clear()  # the text encoder is training
        settings = EditSettings(self.options.validate_steps, self.options.validate_guidance, 1.0, seed=0)
        if rows is not None:
            captions = [rows[i]["caption"] for i in range(min(self.options.validate_samples, len(rows)))]
            return sample_captions(model, captions, self.config.data.size, settings), {}
        result, images = evaluate_captions(model, self.options.validate_samples, self.config.data.size, settings,
                                           "validation", grid=True)
        return images, {"caption_accuracy": result["caption_accuracy"]}
