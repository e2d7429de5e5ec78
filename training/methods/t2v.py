"""``t2v``: a toy video base, flow matching on the toy world's clips and their captions only.

It starts from a text-to-image base made a video model by its family (``EditModel.as_video``: the
toy UNet with temporal layers that first draw every frame as the image model does), or continues
a video model; ``data.frames`` says how many frames its clips have.
"""

from __future__ import annotations

import torch

from ...core.samplers import EditSettings
from ..config import ConfigError
from ..evaluate import evaluate_clip_captions
from .t2i import TextToImage


class TextToVideo(TextToImage):
    name = "t2v"
    pictures = "video"

    def __init__(self, config, options) -> None:
        super().__init__(config, options)
        if not config.data.frames:
            raise ConfigError("t2v trains on clips: set data.frames (e.g. 8) in the config.")

    def build_model(self):
        model = super().build_model()
        try:
            return model.as_video()
        except ValueError as err:
            raise ConfigError(f"training config › model: {err}") from None

    @torch.no_grad()
    def validate(self, model, rows):
        """Per-frame caption accuracy of text-to-video samples of validation-split clip captions."""
        model.text_cache.clear()  # the text encoder is training
        o, data = self.options, self.config.data
        settings = EditSettings(o.validate_steps, o.validate_guidance, 1.0, seed=0)
        result, frames = evaluate_clip_captions(model, o.validate_samples, data.size, data.frames, settings,
                                                "validation", grid=True)
        return frames, {"frame_caption_accuracy": result["frame_caption_accuracy"]}
