"""Anti-aliased rendering of toy scenes at any size (supersampled, then averaged)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .world import BACKGROUNDS, COLOURS, SIZES, Obj, Scene

SUPERSAMPLE = 4
CHECKS = 4  # cells per side of the checked background


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = size * SUPERSAMPLE
    c = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    return torch.meshgrid(c, c, indexing="ij")  # y, x in 0..1


def object_mask(obj: Obj, size: int) -> torch.Tensor:
    """Coverage of ``obj`` per pixel, [size, size] in 0..1."""
    return _coverage(_inside(obj, *_grid(size)))


def _inside(obj: Obj, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    cx, cy = obj.centre
    r = SIZES[obj.size]
    dx, dy = x - cx, y - cy
    if obj.shape == "circle":
        return dx**2 + dy**2 <= r**2
    if obj.shape == "square":
        return torch.maximum(dx.abs(), dy.abs()) <= 0.85 * r  # about the circle's area
    if obj.shape == "triangle":  # pointing up, base at cy + r/2, apex at cy - r
        below_apex = dy >= -r
        above_base = dy <= 0.5 * r
        half_width = (dy + r) / 1.5 * 0.866
        return below_apex & above_base & (dx.abs() <= half_width)
    if obj.shape == "cross":
        w = r / 3
        return ((dx.abs() <= r) & (dy.abs() <= w)) | ((dx.abs() <= w) & (dy.abs() <= r))
    raise ValueError(f"Unknown shape {obj.shape!r}.")


def _coverage(inside: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(inside.float()[None, None], SUPERSAMPLE)[0, 0]


def _rgb(colour: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(colour, dtype=torch.float32).view(3, 1, 1) / 127.5 - 1.0


def background(name: str, size: int) -> torch.Tensor:
    first, second = BACKGROUNDS[name]
    image = _rgb(first).expand(3, size, size).clone()
    if second is not None:
        y, x = _grid(size)
        checks = ((y * CHECKS).floor() + (x * CHECKS).floor()) % 2 == 1
        cover = _coverage(checks)
        image = image * (1 - cover) + _rgb(second) * cover
    return image


def render(scene: Scene, size: int) -> torch.Tensor:
    """[3, size, size] in -1..1."""
    image = background(scene.background, size)
    for obj in scene.objects:
        cover = object_mask(obj, size)
        image = image * (1 - cover) + _rgb(COLOURS[obj.colour]) * cover
    return image


def render_batch(scenes: Sequence[Scene], size: int) -> torch.Tensor:
    """[B, 3, size, size] in -1..1."""
    return torch.stack([render(s, size) for s in scenes])


def scene_mask(scene: Scene, size: int) -> torch.Tensor:
    """Where any object is, [size, size] in 0..1."""
    mask = torch.zeros(size, size)
    for obj in scene.objects:
        mask = torch.maximum(mask, object_mask(obj, size))
    return mask
