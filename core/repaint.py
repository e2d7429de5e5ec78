"""Repaint the masked regions of pictures: crop each region with its context, bring the crop to
the model's working size, inpaint it (an inpainting model) or edit it by instruction (any editor),
bring it back and composite it by the feathered blend (``core/regions.py``). Every pixel the
blend does not reach is the canvas's, bit for bit (composite in the caller's own pixel range, so
no conversion touches them), and the cost follows the masked area."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .editing import check_instruction, edit_pixels, inpaint_pixels
from .errors import EditError
from .models.base import EditModel
from .regions import Box, blend_weights, regions, resize, resize_mask, stitch, working_size
from .samplers import EditSettings, Hooks


@dataclass(frozen=True)
class Area:
    """How the mask becomes crops: grown by ``grow`` px, feathered over ``feather`` px, each region
    with ``context`` px around it, sampled at ``size`` (0: the model's working size)."""

    grow: int = 4
    feather: int = 8
    context: int = 64
    size: int = 0


@dataclass(frozen=True)
class Plan:
    """What a mask asks for: the blend weights [B,H,W] and the (picture, crop) pairs to sample."""

    weights: torch.Tensor
    crops: list[tuple[int, Box]]
    size: int


def plan(mask: torch.Tensor, area: Area = Area()) -> Plan:
    """The plan for ``mask`` [B,H,W] (0..1, 1 = repaint); no crops when nothing is masked."""
    weights = blend_weights(mask.float(), area.grow, area.feather)
    crops = [(i, box) for i in range(len(weights)) for box in regions(weights[i] > 0, area.context)]
    return Plan(weights, crops, area.size)


@torch.no_grad()
def repaint(model: EditModel, pixels: torch.Tensor, plan: Plan, prompt: str, settings: EditSettings,
            hooks: Hooks | None = None, where: str = "Mask Inpaint") -> list[tuple[int, Box, torch.Tensor]]:
    """The crops of ``pixels`` [B,3,H,W] in -1..1 that ``plan`` names, repainted: from ``prompt`` by an
    inpainting model, or by an editor following ``prompt`` as an instruction. Each comes back as
    (picture, box, [3,h,w] in -1..1 at the box's size), for ``composite``."""
    if not model.inpaints:
        prompt = check_instruction(prompt, f"{where} › prompt", model)
    hooks = hooks or Hooks()
    side = plan.size or model.working_size
    painted = []
    for n, (i, box) in enumerate(plan.crops):
        size = working_size(box, side, model.factor)
        crop = resize(box.of(pixels[i : i + 1]), size)
        crop_hooks = replace(hooks, offset=n * settings.steps, total=len(plan.crops) * settings.steps)
        if model.inpaints:
            support = resize_mask(box.of(plan.weights[i : i + 1] > 0).float()[:, None], size)
            out = inpaint_pixels(model, crop, support, prompt, settings, crop_hooks, where=where)
        else:
            out = edit_pixels(model, crop, prompt, settings, crop_hooks, where=where)
        painted.append((i, box, resize(out, (box.height, box.width))[0]))
    return painted


def composite(canvas: torch.Tensor, painted: list[tuple[int, Box, torch.Tensor]], weights: torch.Tensor) -> torch.Tensor:
    """``canvas`` [B,C,H,W] with each painted crop (in the canvas's own range) blended in by ``weights``
    [B,H,W]; a pixel of weight 0 stays the canvas's, bit for bit."""
    out = canvas.clone()
    for i, box, crop in painted:
        out[i] = stitch(out[i], crop, weights[i], box)
    return out


def check_mask(mask: torch.Tensor, image: torch.Tensor, where: str) -> torch.Tensor:
    """A ComfyUI MASK ([B,H,W] or [H,W], 1 = repaint) for an IMAGE batch [B,H,W,C] as [B,H,W]: one
    mask for every picture or one each, the pictures' size, finite, within 0..1."""
    if not torch.is_tensor(mask) or mask.dim() not in (2, 3):
        shape = list(mask.shape) if torch.is_tensor(mask) else type(mask).__name__
        raise EditError(where, f"A MASK is [batch, height, width]; this is {shape}.",
                        "Connect a MASK output (Load Image's mask, a mask editor, ImagePadForOutpaint).")
    mask = mask[None] if mask.dim() == 2 else mask
    b, h, w = image.shape[:3]
    if tuple(mask.shape[1:]) != (h, w):
        raise EditError(where, f"The mask is {mask.shape[2]}x{mask.shape[1]} pixels but the image is {w}x{h}.",
                        "Make the mask from this image, or resize it to the image's size.")
    if mask.shape[0] not in (1, b):
        raise EditError(where, f"There are {mask.shape[0]} masks for {b} images.",
                        "Give one mask for all the images or one for each.")
    if not torch.isfinite(mask).all():
        raise EditError(where, "The mask holds NaN or infinite values.", "Rebuild the mask from a clean source.")
    if mask.numel() and (mask.min() < 0 or mask.max() > 1):
        raise EditError(where, f"A mask holds values in 0..1 (1 = repaint); this one spans "
                        f"{float(mask.min()):g}..{float(mask.max()):g}.",
                        "Convert the picture to a mask (Image To Mask) or divide it into 0..1.")
    return mask.expand(b, h, w).float()
