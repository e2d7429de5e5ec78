"""Where a masked picture is repainted, and how the repainted crops go back.

The mask (1 = repaint, binarised at 0.5) is grown by ``grow`` pixels and feathered over
``feather`` more: that blend weight is 1 on the grown mask, falls to 0 outside it, and is exactly
0 further out, where the stitched picture keeps the input's pixels bit for bit. Each separate
region of the blend gets its own crop (the region plus ``context`` pixels, made square where the
canvas allows, as models are trained on square pictures); crops that would overlap are merged,
so the cost follows the masked area, not the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

COARSE = 128  # regions are told apart on a grid of at most this many cells a side


@dataclass(frozen=True)
class Box:
    """Rows ``top:bottom`` and columns ``left:right`` of a picture."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def of(self, x: torch.Tensor) -> torch.Tensor:
        """The crop of ``x`` [..., H, W]."""
        return x[..., self.top:self.bottom, self.left:self.right]

    def overlaps(self, other: "Box") -> bool:
        return self.top < other.bottom and other.top < self.bottom and self.left < other.right and other.left < self.right

    def union(self, other: "Box") -> "Box":
        return Box(min(self.top, other.top), min(self.left, other.left), max(self.bottom, other.bottom),
                   max(self.right, other.right))


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """``mask`` [B,H,W] in 0..1 grown by ``pixels`` in every direction (a square neighbourhood)."""
    if pixels <= 0:
        return mask
    return F.max_pool2d(mask[:, None], 2 * pixels + 1, stride=1, padding=pixels)[:, 0]


def blend_weights(mask: torch.Tensor, grow: int, feather: int) -> torch.Tensor:
    """[B,H,W] in 0..1: 1 on ``mask`` (>= 0.5) grown by ``grow``, fading to 0 over ``feather`` pixels
    outside it, exactly 0 beyond."""
    grown = dilate((mask >= 0.5).float(), grow)
    if feather <= 0:
        return grown
    inner, outer = feather // 2, feather - feather // 2
    # A box average of the mask grown by ``inner``: 1 wherever the whole box lies in it (so on the
    # grown mask), 0 wherever none of it does (beyond ``feather``); a border averages what it has.
    return F.avg_pool2d(dilate(grown, inner)[:, None], 2 * outer + 1, stride=1, padding=outer,
                        count_include_pad=False)[:, 0].clamp(0, 1)


def regions(support: torch.Tensor, context: int) -> list[Box]:
    """Crops covering every True pixel of ``support`` [H,W]: one per separate region, grown by
    ``context`` and made square within the canvas, merged where they would overlap."""
    h, w = support.shape
    if not support.any():
        return []
    boxes = [_square(_grow(box, context, h, w), h, w) for box in _components(support)]
    while pair := next(((i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                        if boxes[i].overlaps(boxes[j])), None):  # a union may overlap a third box
        i, j = pair
        boxes[i] = _square(boxes[i].union(boxes.pop(j)), h, w)
    return sorted(boxes, key=lambda b: (b.top, b.left))


def _components(support: torch.Tensor) -> list[Box]:
    """The bounding box of each 8-connected region of ``support``, told apart on a coarse grid (two
    regions closer than a cell count as one, which their context would merge anyway)."""
    h, w = support.shape
    cell = max(1, math.ceil(max(h, w) / COARSE))
    coarse = F.max_pool2d(support[None, None].float(), cell, ceil_mode=True)[0, 0] > 0
    labels = torch.where(coarse, torch.arange(1, coarse.numel() + 1, dtype=torch.float32).reshape(coarse.shape), 0.0)
    while True:  # every cell takes the largest label among its neighbours until nothing changes
        spread = F.max_pool2d(labels[None, None], 3, stride=1, padding=1)[0, 0] * coarse
        if torch.equal(spread, labels):
            break
        labels = spread
    boxes = []
    for label in labels[coarse].unique():
        cells = (labels == label).repeat_interleave(cell, 0).repeat_interleave(cell, 1)[:h, :w] & support
        rows, cols = cells.any(1).nonzero().flatten(), cells.any(0).nonzero().flatten()
        boxes.append(Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))
    return boxes


def _grow(box: Box, pixels: int, h: int, w: int) -> Box:
    return Box(max(0, box.top - pixels), max(0, box.left - pixels), min(h, box.bottom + pixels),
               min(w, box.right + pixels))


def _square(box: Box, h: int, w: int) -> Box:
    """``box`` widened along its shorter side toward a square, as far as the canvas allows."""
    side = max(box.height, box.width)
    top, bottom = _widen(box.top, box.bottom, min(side, h), h)
    left, right = _widen(box.left, box.right, min(side, w), w)
    return Box(top, left, bottom, right)


def _widen(start: int, end: int, length: int, limit: int) -> tuple[int, int]:
    """``start:end`` widened about its centre to ``length``, shifted to stay within ``0:limit``."""
    extra = length - (end - start)
    if extra <= 0:
        return start, end
    start = max(0, start - extra // 2)
    end = start + length
    if end > limit:
        start, end = limit - length, limit
    return start, end


def working_size(box: Box, size: int, factor: int) -> tuple[int, int]:
    """The (height, width) a crop is sampled at: the area of ``size`` x ``size`` with the crop's
    aspect, each side a multiple of ``factor``."""
    scale = size / math.sqrt(box.height * box.width)
    return tuple(max(factor, round(side * scale / factor) * factor) for side in (box.height, box.width))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B,C,H,W] to ``size``: area averaging down, bicubic up (clamped to the input's range)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    up = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    return up.clamp(float(x.min()), float(x.max()))


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B,1,H,W] in 0..1 to ``size`` as 0/1, erring toward 1: a pixel any of the mask reaches is masked."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return (mask > 0).to(mask)
    mode = "area" if size[0] <= mask.shape[-2] and size[1] <= mask.shape[-1] else "bilinear"
    return (F.interpolate(mask, size=size, mode=mode) > 0).to(mask)


def extend_canvas(pixels: torch.Tensor, mask: torch.Tensor, left: int, top: int, right: int,
                  bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Outpainting's canvas: ``pixels`` [B,3,H,W] with their edges repeated outward by the given
    pixels, and ``mask`` [B,H,W] with the new border masked (1)."""
    pad = (left, right, top, bottom)
    return F.pad(pixels, pad, mode="replicate"), F.pad(mask, pad, value=1.0)


def stitch(original: torch.Tensor, painted: torch.Tensor, weights: torch.Tensor, box: Box) -> torch.Tensor:
    """``original`` [C,H,W] with ``painted`` [C,h,w] (the crop ``box``, at its size) blended in by
    ``weights`` [H,W]; where a weight is 0 the original pixel is kept exactly."""
    out = original.clone()
    w = box.of(weights)[None].to(original)
    crop = box.of(original)
    out[..., box.top:box.bottom, box.left:box.right] = torch.where(w > 0, crop + w * (painted.to(crop) - crop), crop)
    return out
