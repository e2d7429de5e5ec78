"""``clip``: a small contrastive image/text encoder for the toy world, CLIP's symmetric InfoNCE
on toy pictures and their captions. UIP2P's losses read it (training/image_text.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.toy.render import render
from ...core.toy.world import caption, fixed_scenes
from ..config import ConfigError
from ..data import Needs
from ..image_text import build_toy_clip
from .base import Method


@dataclass
class ClipOptions:
    width: int = 64
    layers: int = 2
    validate_samples: int = 64  # validation-split pictures, each to be matched with its caption among all of theirs


class Clip(Method):
    name = "clip"
    Options = ClipOptions
    needs = Needs("captions")

    def build_model(self):
        if self.config.model != "new":
            raise ConfigError("The clip trainer starts from a new encoder: leave 'model' at 'new'.")
        return build_toy_clip(self.config.seed, self.config.data.size, self.options.width, self.options.layers)

    def trainable(self, model):
        return model.modules()

    def loss(self, model, batch, rngs, state):
        images = model.images(batch["image"])
        texts = model.texts(batch["caption"])
        logits = model.model.logit_scale.exp() * images @ texts.T
        labels = torch.arange(len(images), device=logits.device)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, model, rows):
        """Picture-to-caption retrieval on validation-split scenes, or on the held-out rows."""
        if rows is not None:
            items = [rows[i] for i in range(min(self.options.validate_samples, len(rows)))]
            images, captions = torch.stack([item["image"] for item in items]), [item["caption"] for item in items]
        else:
            scenes = fixed_scenes(self.options.validate_samples, "validation")
            images = torch.stack([render(s, self.config.data.size) for s in scenes])
            captions = [caption(s) for s in scenes]
        best = (model.images(images) @ model.texts(captions).T).argmax(1)
        # A caption may describe several of the pictures: any picture it fits counts as found.
        found = [captions[j] == captions[i] for i, j in enumerate(best.tolist())]
        return images, {"retrieval": sum(found) / len(found)}

    def save(self, model, out: Path) -> Path:
        return model.save(out / "clip")
