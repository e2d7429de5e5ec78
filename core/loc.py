"""LoRA of Change's hypernetwork: a before/after picture pair in, a LoRA for the editor out.

Both pictures go through one image encoder (patch tokens: a small ViT trained with the
hypernetwork, or a frozen CLIP vision tower read from a local folder, whose weights then travel
in the hypernetwork's file); their pooled features are fused by
a linear layer into the pair's "visual instruction"; a transformer decoder (6 blocks, the
paper's M) reads the tokens of both pictures and that feature with one learned query per
target layer; per-layer linear heads turn each query's output into the layer's LoRA factors.
The ``up`` heads start at zero, so an untrained hypernetwork changes nothing.

Not fixed by the paper, chosen here: targets are the attention projections
(where an InstructPix2Pix UNet reads the instruction), rank 4, and the query-per-layer decoder
of HyperDreamBooth.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from .containers import FORMAT_VERSION, atomic_save, read_kind, read_weights
from .errors import EditError
from .file_checks import DAMAGED, from_metadata, shapes
from .generated_lora import LoraDelta
from .model_files import clip_preprocessing
from .models import EditModel

KIND = "loc_hypernetwork"


@dataclass
class LocConfig:
    targets: dict[str, list[int]]  # layer name -> [in_features, out_features]
    rank: int = 4
    width: int = 128
    blocks: int = 6
    heads: int = 4
    image_size: int = 16  # the encoder sees both pictures at this size
    patch: int = 4
    encoder_blocks: int = 2
    vision: dict | None = None  # a CLIPVisionConfig: encode with that (frozen) tower instead
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # the tower's input normalisation
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)

    def to_dict(self) -> dict:
        return asdict(self)


class PatchEncoder(nn.Module):
    """A small ViT: patch embedding, learned positions, pre-norm transformer blocks."""

    def __init__(self, config: LocConfig) -> None:
        super().__init__()
        self.size = config.image_size
        self.embed = nn.Conv2d(3, config.width, config.patch, stride=config.patch)
        self.position = nn.Parameter(torch.randn(1, (config.image_size // config.patch) ** 2, config.width) * 0.02)
        self.blocks = nn.TransformerEncoder(_encoder_layer(config), config.encoder_blocks, enable_nested_tensor=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in -1..1 -> tokens [B,N,width]."""
        if pixels.shape[-2:] != (self.size, self.size):
            pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bilinear", antialias=True)
        tokens = self.embed(pixels).flatten(2).transpose(1, 2)
        return self.blocks(tokens + self.position)


class VisionTowerEncoder(nn.Module):
    """A CLIP vision tower's patch tokens (normalised the tower's way), projected to the width."""

    def __init__(self, config: LocConfig) -> None:
        super().__init__()
        self.size = config.image_size
        self.tower = CLIPVisionModel(CLIPVisionConfig(**config.vision))
        self.project = nn.Linear(self.tower.config.hidden_size, config.width)
        self.register_buffer("mean", torch.tensor(config.image_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.image_std).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-2:] != (self.size, self.size):
            pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bicubic", antialias=True)
        x = ((pixels + 1) / 2 - self.mean) / self.std
        return self.project(self.tower(pixel_values=x.to(self.project.weight.dtype)).last_hidden_state)


def build_hypernetwork(config: LocConfig, vision_tower: str | Path | None = None,
                       where: str = "training config › loc.vision_tower") -> "LocHypernetwork":
    """A new hypernetwork; with ``vision_tower`` (a CLIPVisionModel or CLIPModel folder saved
    by save_pretrained) it encodes with that tower's weights and normalisation."""
    if vision_tower is None:
        return LocHypernetwork(config)
    pre = clip_preprocessing(vision_tower, where)
    tower = CLIPVisionModel.from_pretrained(vision_tower, local_files_only=True, use_safetensors=True)
    vision = {k: v for k, v in tower.config.to_dict().items() if k not in ("torch_dtype", "dtype")}
    config = replace(config, vision=vision, image_size=tower.config.image_size,
                     image_mean=tuple(pre.get("image_mean", config.image_mean)),
                     image_std=tuple(pre.get("image_std", config.image_std)))
    hypernetwork = LocHypernetwork(config)
    hypernetwork.encoder.tower.load_state_dict(tower.state_dict())
    return hypernetwork


class LocHypernetwork(nn.Module):
    def __init__(self, config: LocConfig) -> None:
        super().__init__()
        self.config = config
        w, n = config.width, len(config.targets)
        self.encoder = VisionTowerEncoder(config) if config.vision else PatchEncoder(config)
        self.fuse = nn.Linear(2 * w, w)
        self.which = nn.Parameter(torch.randn(3, w) * 0.02)  # marks before / after / fused tokens
        self.queries = nn.Parameter(torch.randn(n, w) * 0.02)
        self.decoder = nn.TransformerDecoder(_decoder_layer(config), config.blocks)
        self.down = nn.ModuleList(nn.Linear(w, config.rank * fan_in) for fan_in, _ in config.targets.values())
        self.up = nn.ModuleList(nn.Linear(w, fan_out * config.rank) for _, fan_out in config.targets.values())
        for head in self.up:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> LoraDelta:
        """Pictures [B,3,H,W] in -1..1 (any sizes: the encoder resizes) -> one LoRA per pair."""
        b = before.shape[0]
        tokens_before, tokens_after = self.encoder(before), self.encoder(after)
        instruction = self.fuse(torch.cat([tokens_before.mean(1), tokens_after.mean(1)], dim=-1))
        memory = torch.cat([tokens_before + self.which[0], tokens_after + self.which[1],
                            instruction[:, None] + self.which[2]], dim=1)
        features = self.decoder(self.queries.expand(b, -1, -1), memory)
        down, up = {}, {}
        for i, (name, (fan_in, fan_out)) in enumerate(self.config.targets.items()):
            # 1/sqrt(fan_in) keeps B A x at the scale of W x whatever the layer's width
            down[name] = self.down[i](features[:, i]).view(b, self.config.rank, fan_in) / math.sqrt(fan_in)
            up[name] = self.up[i](features[:, i]).view(b, fan_out, self.config.rank)
        return LoraDelta(down, up)


def _encoder_layer(config: LocConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, dropout=0.0,
                                      batch_first=True, norm_first=True)


def _decoder_layer(config: LocConfig) -> nn.TransformerDecoderLayer:
    return nn.TransformerDecoderLayer(config.width, config.heads, 4 * config.width, dropout=0.0,
                                      batch_first=True, norm_first=True)


def save_hypernetwork(hypernetwork: LocHypernetwork, editor: EditModel, path: str | Path, **extra) -> Path:
    """Weights plus what they belong to: the editor's family and fingerprint, and the config."""
    meta = {"format_version": FORMAT_VERSION, "kind": KIND, "family": editor.family, "base_hash": editor.base_hash(),
            "base_name": editor.info.name, "loc": hypernetwork.config.to_dict(), **extra}
    return atomic_save(hypernetwork.state_dict(), meta, path)


@dataclass(frozen=True)
class LocFile:
    """A hypernetwork read from its file, and the file's metadata: the editor it was made for
    (``family``, ``base_hash``, ``base_name``) and its settings (``loc``)."""

    network: LocHypernetwork
    meta: dict


def load_hypernetwork(path: str | Path, where: str = "Load LoC Hypernetwork") -> LocFile:
    """The hypernetwork of ``path`` (on the CPU, in eval mode) with its file's metadata."""
    path = Path(path)
    meta = read_kind(path, KIND, where, "a LoC hypernetwork",
                     "Pick a file written by `python -m unpaired_edit.training loc`.", {"loc": dict})
    config = from_metadata(LocConfig, meta["loc"], path.name, where, "loc.")
    try:
        hypernetwork = LocHypernetwork(config)
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. a target of one size, a width of 0
        raise EditError(where, f"'{path.name}' has settings that make no hypernetwork ({str(err)[:200]}).",
                        DAMAGED) from None
    hypernetwork.load_state_dict(read_weights(path, where, shapes(hypernetwork.state_dict())))
    return LocFile(hypernetwork.eval().requires_grad_(False), meta)
