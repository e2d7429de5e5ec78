"""Preference pairs built from pictures alone, for the quality reward (training/methods/reward.py):
a clean picture is better than the same picture with one local defect of the kinds a bad
inpainting leaves in a region (a blur, noise, a flat smear, an unpainted grey hole, a patch
copied from elsewhere, a colour cast). No inpainting target is ever used."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFECTS = ("blur", "noise", "smear", "hole", "patch", "tint")


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _box(side: int, generator: torch.Generator) -> tuple[slice, slice]:
    """A random box of 25..60 % of the side (at least 2 pixels)."""
    h, w = (max(2, round(side * _uniform(generator, 0.25, 0.6))) for _ in range(2))
    top, left = (int(torch.randint(0, side - n + 1, (), generator=generator)) for n in (h, w))
    return slice(top, top + h), slice(left, left + w)


def degrade(picture: torch.Tensor, generator: torch.Generator, defect: str | None = None) -> torch.Tensor:
    """``picture`` [3,H,W] in -1..1 with one defect (``defect``, or one drawn) in a random box."""
    defect = defect or DEFECTS[int(torch.randint(0, len(DEFECTS), (), generator=generator))]
    out = picture.clone()
    rows, cols = _box(min(picture.shape[-2:]), generator)
    region = picture[:, rows, cols]
    if defect == "blur":
        blurred = F.avg_pool2d(picture[None], 5, stride=1, padding=2, count_include_pad=False)[0]
        changed = blurred[:, rows, cols]
    elif defect == "noise":
        changed = region + _uniform(generator, 0.2, 0.6) * torch.randn(region.shape, generator=generator)
    elif defect == "smear":
        changed = region.mean((1, 2), keepdim=True).expand_as(region)
    elif defect == "hole":
        changed = torch.full_like(region, _uniform(generator, -0.2, 0.2))
    elif defect == "patch":
        h, w = region.shape[1:]
        top = int(torch.randint(0, picture.shape[1] - h + 1, (), generator=generator))
        left = int(torch.randint(0, picture.shape[2] - w + 1, (), generator=generator))
        changed = picture[:, top:top + h, left:left + w]
    elif defect == "tint":
        scale = torch.rand(3, 1, 1, generator=generator) * 0.8 + 0.6
        shift = (torch.rand(3, 1, 1, generator=generator) - 0.5) * 0.6
        changed = region * scale + shift
    else:
        raise ValueError(f"defect must be one of {', '.join(DEFECTS)}, not {defect!r}.")
    out[:, rows, cols] = changed.clamp(-1, 1)
    return out
