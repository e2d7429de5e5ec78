"""``inpaint``: the supervised inpainting baseline, the standard fine-tune of an inpainter by masked
reconstruction: a picture, a mask and the prompt that names what the hole shows; the model denoises
the picture reading the masked picture and the mask (the family's own loss: SD inpainters in their
DDPM parameterisation, toy inpainters by flow matching).

It starts from an inpainting model, or from a model whose family can become one (a toy base: its
UNet gains mask and masked-source channels at zero, ``ToyInpaintModel.from_toy``). The toy world's
data are its inpainting tasks (``core/toy/inpainting.py``) on training scenes; no edited pair is
rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...core.models import EditModel
from ...core.samplers import EditSettings
from ..config import ConfigError
from ..data import Needs
from ..evaluate import evaluate_inpainting
from .base import per_sample
from .editor import EditorMethod


@dataclass
class InpaintOptions:
    train_text_encoder: bool = True  # toy models: their small encoder learns the prompt words
    prompt_dropout: float = 0.1  # share of empty prompts (so guidance works, and prompt-free outpainting)
    validate_tasks: int = 30  # validation-split tasks (10 of each kind) scored by the oracle at each validation
    validate_steps: int = 20
    validate_guidance: float = 1.0


class Inpaint(EditorMethod):
    name = "inpaint"
    Options = InpaintOptions
    needs = Needs("inpaint")

    def build_model(self) -> EditModel:
        model = super().build_model()
        try:
            return model.as_inpainter()
        except ValueError as err:
            raise ConfigError(f"'model': {err}") from None

    def loss(self, model, batch, rngs, state):
        pixels = batch["image"].to(model.device, model.dtype)
        drop = per_sample(rngs, (), torch.rand) < self.options.prompt_dropout
        text = self.instructions(model, ["" if d else p for p, d in zip(batch["prompt"], drop.tolist())])
        source = model.encode_source(pixels, batch["mask"].to(pixels))
        loss = model.denoising_loss(pixels, text, source, rngs)
        return loss, {"loss": loss.item()}

    def validation_settings(self) -> EditSettings:
        return EditSettings(self.options.validate_steps, self.options.validate_guidance, 1.0, seed=0)

    @torch.no_grad()
    def validate(self, model, rows):
        model.text_cache.clear()  # the text encoder may have changed since the last validation
        table, grid = evaluate_inpainting(model, self.options.validate_tasks, self.config.data.size,
                                          self.validation_settings(), "validation", grid=True)
        return grid, {f"{kind}/{m}": v for kind, scores in table.items() for m, v in scores.items() if m != "n"}
