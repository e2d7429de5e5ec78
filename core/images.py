"""Conversions between ComfyUI images and model pixels, and fitting sizes to a model.

ComfyUI's IMAGE is float32 ``[B, H, W, C]`` in 0..1; models take ``[B, 3, H, W]`` in -1..1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import EditError


def to_rgb(image: torch.Tensor, where: str) -> torch.Tensor:
    """Return ``image`` ([B,H,W,C] or [H,W,C]) as [B,H,W,3]: greyscale repeated, alpha dropped."""
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise EditError(where, f"Expected an IMAGE of shape [batch, height, width, channels], got {tuple(image.shape)}.",
                        "Connect an IMAGE output (e.g. from Load Image).")
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise EditError(where, f"The image is empty (shape {tuple(image.shape)}): no picture, or one without pixels.",
                        "Connect a node that gives at least one picture of at least 1×1 pixels.")
    channels = image.shape[-1]
    if channels == 1:
        return image.expand(*image.shape[:-1], 3)
    if channels in (3, 4):
        return image[..., :3]
    if channels == 2:  # greyscale + alpha
        return image[..., :1].expand(*image.shape[:-1], 3)
    raise EditError(where, f"The image has {channels} channels; only grey, RGB and RGBA are understood.",
                    "Convert the image to RGB before this node.")


def non_finite(x: torch.Tensor) -> int:
    """How many values of ``x`` are NaN or infinite (none in an integer tensor)."""
    return int(x.numel() - torch.isfinite(x).sum()) if x.is_floating_point() else 0


def comfy_to_pixels(image: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] in 0..1 -> [B,3,H,W] in -1..1."""
    return image.movedim(-1, 1).float() * 2.0 - 1.0


def pixels_to_comfy(pixels: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] in -1..1 -> [B,H,W,3] in 0..1 on the CPU."""
    return (pixels.float() / 2.0 + 0.5).clamp(0.0, 1.0).movedim(1, -1).cpu()


def pil_to_pixels(image) -> torch.Tensor:
    """An RGB PIL image -> [3,H,W] in -1..1."""
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float() / 127.5 - 1.0


def comfy_to_pil(image: torch.Tensor):
    """One ComfyUI picture [H,W,C] in 0..1 -> an 8-bit PIL image (greyscale for one channel)."""
    from PIL import Image

    data = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(data[..., 0] if data.shape[-1] == 1 else data)


def pixels_to_pil(pixels: torch.Tensor):
    """Model pixels [3,H,W] in -1..1 -> an RGB PIL image."""
    return comfy_to_pil(pixels_to_comfy(pixels[None])[0])


@dataclass(frozen=True)
class Fit:
    """How an image was brought to a size the model takes, so it can be undone."""

    height: int
    width: int
    resized: bool = False

    def undo(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.resized:
            return F.interpolate(pixels.float(), size=(self.height, self.width), mode="bilinear",
                                 align_corners=False)
        return pixels[..., : self.height, : self.width]


def fit_to_model(pixels: torch.Tensor, factor: int, native: int | None = None) -> tuple[torch.Tensor, Fit]:
    """Bring ``pixels`` [B,3,H,W] to a size the model takes.

    A model trained at one size only (``native``, e.g. the 16x16 toy models) gets the image
    resized to it. Any other model gets the sides padded by edge replication up to a multiple
    of ``factor``: padding (rather than resizing) keeps every source pixel where it was, so
    the edit and the cycle-error map line up with the input exactly once it is cropped away.
    """
    h, w = pixels.shape[-2:]
    if native and (h, w) != (native, native):
        return F.interpolate(pixels.float(), size=(native, native), mode="area").to(pixels), Fit(h, w, True)
    pad_h, pad_w = (-h) % factor, (-w) % factor
    if pad_h == 0 and pad_w == 0:
        return pixels, Fit(h, w)
    return F.pad(pixels, (0, pad_w, 0, pad_h), mode="replicate"), Fit(h, w)
