"""ByteEdit's reward models behind one interface: ``score(picture, text, mask) -> logit`` per
picture, differentiable in the picture (methods.md §4.2), and the perceptual distance its
regulariser reads.

- ``AlignmentReward``: how much the painted region moves the picture towards the prompt, read by
  any CLIP-like encoder (``ImageTextEncoder``; the toy world's from the ``clip`` trainer).
- ``QualityReward``: a small preference model trained with the Bradley–Terry loss on better/worse
  pictures by the ``reward`` trainer (training/methods/reward.py).
- ``CoherenceReward``: a per-pixel real-vs-generated discriminator, trained online beside the
  editor (a loop critic); its score is its mean logit over the painted pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..core.containers import FORMAT_VERSION, atomic_save, read_metadata, read_weights
from ..core.errors import EditError
from ..core.file_checks import check_fields, shapes
from .image_text import ImageTextEncoder

QUALITY_KIND = "quality_reward"


class Reward(Protocol):
    def score(self, picture: torch.Tensor, text: list[str], mask: torch.Tensor) -> torch.Tensor:
        """Pictures [B,3,H,W] in -1..1, their prompts and masks [B,1,H,W] (1 = painted) -> [B] logits,
        high for good; ``-logsigmoid`` of them is the feedback loss."""
        ...


class AlignmentReward:
    """``scale * (cos(picture, text) - cos(picture without its painted region, text))``: the
    CLIP-like encoder's similarity gained by what was painted. The reference (the picture with
    the hole blanked, as the inpainter saw it) is detached: a per-picture baseline, so the logit
    is 0 for a hole painted no closer to the prompt than grey, whatever the prompt's own
    similarity level."""

    def __init__(self, encoder: ImageTextEncoder) -> None:
        self.encoder = encoder

    def score(self, picture: torch.Tensor, text: list[str], mask: torch.Tensor) -> torch.Tensor:
        texts = self.encoder.texts(text)
        with torch.no_grad():
            reference = (self.encoder.images(picture * (1 - mask)) * texts).sum(-1)
        scale = self.encoder.model.logit_scale.exp()
        return scale * ((self.encoder.images(picture) * texts).sum(-1) - reference)


def perceptual_distance(encoder: ImageTextEncoder, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the vision tower's hidden states of ``a`` and ``b`` [B,3,H,W], layer by layer:
    the perceptual regulariser (the paper's VGG features; no VGG weights ship, a CLIP-like encoder does)."""
    layers = zip(encoder.hidden_states(a), encoder.hidden_states(b))
    return torch.stack([(x - y).abs().mean() for x, y in layers]).mean()


class QualityNet(nn.Module):
    """A small convolutional scorer of whole pictures (text-free): strided features, a mean over
    the picture, a linear head. ``offset`` centres its logit (see ``calibrate``)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU())
        self.head = nn.Linear(2 * width, 1)
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        """Raw Bradley–Terry scores [B] of pictures in -1..1."""
        return self.head(self.features(pictures).mean((2, 3))).squeeze(-1)


class QualityReward:
    """The preference model as a reward: its score minus the calibrated ``offset``, so a logit of 0
    lies half-way between the clean and the degraded pictures it was trained on."""

    def __init__(self, net: QualityNet) -> None:
        self.net = net

    def modules(self) -> dict[str, nn.Module]:
        return {"quality": self.net}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def score(self, picture: torch.Tensor, text: list[str], mask: torch.Tensor) -> torch.Tensor:
        return self.net(picture.to(self.device)) - self.net.offset

    @torch.no_grad()
    def calibrate(self, better: torch.Tensor, worse: torch.Tensor) -> None:
        """Set ``offset`` to the mean score of the pairs' two sides."""
        self.net.offset.copy_((self.net(better).mean() + self.net(worse).mean()) / 2)

    def save(self, path: str | Path) -> Path:
        meta = {"format_version": FORMAT_VERSION, "kind": QUALITY_KIND, "width": self.net.width}
        return atomic_save(self.net.state_dict(), meta, path)

    @classmethod
    def load(cls, path: str | Path, where: str = "training config › byteedit.quality") -> "QualityReward":
        path = Path(path)
        meta = read_metadata(path, where)
        if meta.get("kind") != QUALITY_KIND:
            raise EditError(where, f"'{path.name}' is not a quality reward model.",
                            "Pick the reward.safetensors that `python -m unpaired_edit.training reward` writes.")
        check_fields(meta, {"width": int}, path.name, where)
        net = QualityNet(meta["width"])
        net.load_state_dict(read_weights(path, where, shapes(net.state_dict())))
        return cls(net.eval().requires_grad_(False))


class PixelDiscriminator(nn.Module):
    """Per-pixel real-vs-generated logits [B,1,H,W] of pictures [B,3,H,W]: a fully convolutional
    stack that sees 11×11 pixels around each one, enough to tell a seam or a smudge, not the whole
    scene (it never sees the mask)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 1, 1))

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        return self.net(pictures)


class CoherenceReward:
    """The discriminator's view of a composite: its mean logit over the painted pixels (the paper
    does not say how the per-pixel scores are reduced; the painted region is what the editor makes)."""

    def __init__(self, discriminator: PixelDiscriminator) -> None:
        self.discriminator = discriminator

    def score(self, picture: torch.Tensor, text: list[str], mask: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(picture)
        return (logits * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp_min(1)

    def loss(self, real: torch.Tensor, painted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss (methods.md §4.2, L_D): every pixel of the real pictures is
        real; of a composite, the painted pixels are generated and the rest real."""
        real_logits, painted_logits = self.discriminator(real), self.discriminator(painted.detach())
        on_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        on_painted = F.binary_cross_entropy_with_logits(painted_logits, 1 - mask.expand_as(painted_logits))
        return (on_real + on_painted) / 2
