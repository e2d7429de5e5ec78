"""What every method that trains an editor shares: which modules learn, how instructions are
encoded, and the oracle's validation on validation-split edits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...core.models import EditModel, TextCond
from ...core.samplers import EditSettings
from ..evaluate import edit_rows, evaluate_clip_edits, evaluate_edits
from .base import Method


@dataclass
class EditorOptions:
    train_text_encoder: bool = True  # toy models: their small encoder learns the instruction words
    validate_edits: int = 35  # validation-split edits (5 of each kind) scored by the oracle at each validation
    validate_steps: int = 20
    validate_guidance: float = 1.0
    validate_image_guidance: float = 1.0


class EditorMethod(Method):
    def trains_text_encoder(self, model: EditModel) -> bool:
        """Whether the text encoder learns with the denoiser: where its family lets it (a toy model's
        small encoder learns the instruction words) and the options do not say no."""
        return model.text_encoder_trains and self.options.train_text_encoder

    def trainable(self, model: EditModel) -> dict[str, nn.Module]:
        denoiser = next(name for name, module in model.modules().items() if module is model.denoiser)
        extra = {"text_encoder": model.text_encoder} if self.trains_text_encoder(model) else {}
        return {denoiser: model.denoiser, **extra}

    def instructions(self, model: EditModel, prompts: list[str]) -> TextCond:
        """Instruction embeddings, with gradients when the text encoder trains."""
        return model.text_embeddings(prompts) if self.trains_text_encoder(model) else model.encode_text(prompts)

    @torch.no_grad()
    def validate(self, model: EditModel, rows) -> tuple[torch.Tensor, dict[str, float]]:
        """Edit validation sources: the toy world's, scored by the oracle (``evaluate_edits``: a grid
        of (source, edited, true edit) and strict success, success, preservation, L1 and L2 per
        kind), or the held-out rows' (``edit_rows``)."""
        o = self.options
        model.text_cache.clear()  # the text encoder may have changed since the last validation
        settings = EditSettings(o.validate_steps, o.validate_guidance, o.validate_image_guidance, seed=0)
        if rows is not None:
            metrics, grid = edit_rows(model, rows, o.validate_edits, settings)
            return grid, metrics
        data, batch = self.config.data, self.config.batch_size
        if data.frames:
            table, grid = evaluate_clip_edits(model, o.validate_edits, data.size, data.frames, settings, "validation",
                                              batch=batch, grid=True)
        else:
            table, grid = evaluate_edits(model, o.validate_edits, data.size, settings, "validation", cycle=False,
                                         grid=True, batch=batch)
        return grid, {f"{kind}/{m}": v for kind, scores in table.items() for m, v in scores.items() if m != "n"}
