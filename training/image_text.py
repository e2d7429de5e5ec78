"""A CLIP-like image/text encoder pair for losses that compare pictures with words (UIP2P):
any ``CLIPModel`` folder on disk, or the toy world's small one that the ``clip`` trainer makes.

Pictures go in as our pixels (-1..1, any size) and stay differentiable: the encoder's own
resize and normalisation are applied with torch, not with an image processor.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, CLIPConfig, CLIPModel

from ..core.model_files import CLIP_PREPROCESSOR, clip_preprocessing
from ..core.models.toy import TEXT_LENGTH
from ..core.tokenizers import word_tokenizer
from ..core.toy.world import vocabulary


class ImageTextEncoder:
    def __init__(self, model: CLIPModel, tokenizer, mean: list[float], std: list[float]) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.size = model.config.vision_config.image_size
        self.mean = torch.tensor(mean).reshape(1, 3, 1, 1)
        self.std = torch.tensor(std).reshape(1, 3, 1, 1)

    @classmethod
    def load(cls, path: str | Path, where: str = "training config › clip") -> "ImageTextEncoder":
        pre = clip_preprocessing(path, where)
        model = CLIPModel.from_pretrained(path, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model.eval().requires_grad_(False), tokenizer, pre.get("image_mean", [0.5] * 3),
                   pre.get("image_std", [0.5] * 3))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        (folder / CLIP_PREPROCESSOR).write_text(json.dumps({"image_mean": self.mean.flatten().tolist(),
                                                       "image_std": self.std.flatten().tolist(),
                                                       "size": {"height": self.size, "width": self.size}}))
        return folder

    def modules(self) -> dict[str, nn.Module]:
        return {"clip": self.model}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _pixel_values(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pictures in -1..1 as the vision tower reads them: resized, normalised, differentiable."""
        x = pixels.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (((x + 1) / 2 - self.mean.to(x.device)) / self.std.to(x.device)).to(self.device)

    def images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings of pictures in -1..1, with gradients to the pixels."""
        return F.normalize(_features(self.model.get_image_features(pixel_values=self._pixel_values(pixels))), dim=-1)

    def hidden_states(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The vision tower's token states after each layer, with gradients to the pixels."""
        out = self.model.vision_model(pixel_values=self._pixel_values(pixels), output_hidden_states=True)
        return out.hidden_states[1:]

    def texts(self, prompts: list[str]) -> torch.Tensor:
        """Unit-length embeddings of texts."""
        ids = self.tokenizer(list(prompts), padding="max_length", truncation=True, return_tensors="pt",
                             max_length=min(self.tokenizer.model_max_length, 77))
        out = self.model.get_text_features(input_ids=ids.input_ids.to(self.device),
                                           attention_mask=ids.attention_mask.to(self.device))
        return F.normalize(_features(out), dim=-1)


def _features(out) -> torch.Tensor:
    """transformers 4 returns the projected features, 5 an output whose pooler_output they are."""
    return out if torch.is_tensor(out) else out.pooler_output


def build_toy_clip(seed: int = 0, size: int = 16, width: int = 64, layers: int = 2) -> ImageTextEncoder:
    """An untrained small CLIP over the toy vocabulary and ``size``×``size`` pictures (4-pixel patches)."""
    tokenizer = word_tokenizer(vocabulary(), max_length=TEXT_LENGTH)
    torch.manual_seed(seed)
    text = dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                num_attention_heads=4, max_position_embeddings=TEXT_LENGTH, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(image_size=size, patch_size=4, hidden_size=width, intermediate_size=2 * width,
                  num_hidden_layers=layers, num_attention_heads=4)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=width))
    return ImageTextEncoder(model, tokenizer, [0.5] * 3, [0.5] * 3)
