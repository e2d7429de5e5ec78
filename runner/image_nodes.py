"""The core image I/O nodes a workflow needs, for running without ComfyUI.

Same class_type and input names as ComfyUI's own LoadImage, SaveImage, PreviewImage and
MaskToImage, so one workflow file runs in both. Classic V1 node classes, never registered in ComfyUI (core
already has them). Folders come from the runner's `RunContext`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from ..core.errors import EditError
from ..core.images import comfy_to_pil
from .context import current_context

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def input_image_names() -> list[str]:
    """Image files directly in the input folder, as LoadImage's choices."""
    folder = current_context().input_dir
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _frame_arrays(frame: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB float32 [H,W,3] in 0..1, alpha [H,W] in 0..1 or None)."""
    if frame.mode == "I" or frame.mode.startswith("I;16"):  # 16-bit grey: scale by its own range
        grey = np.asarray(frame, dtype=np.float32) / 65535.0
        return np.repeat(grey[..., None], 3, axis=-1), None
    rgb = np.asarray(frame.convert("RGB"), dtype=np.float32) / 255.0
    has_alpha = "A" in frame.getbands() or "transparency" in frame.info
    alpha = np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0 if has_alpha else None
    return rgb, alpha


def load_image_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """IMAGE [B,H,W,3] and MASK [B,H,W] (1 - alpha; zeros [B,64,64] if there is no alpha, as
    ComfyUI does), one batch entry per frame of the first frame's size."""
    where, fix = "Load Image › image", "Replace it with a working image file (PNG, JPEG, ...), or choose another."
    try:
        if path.stat().st_size > 0:
            return _read_frames(path)
        problem = f"The file {path.name} is empty (0 bytes)."
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:  # what PIL raises for a bad file
        problem = f"The file {path.name} cannot be read as an image ({err})."
    raise EditError(where, problem, fix)


def _read_frames(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, alphas = [], []
    with Image.open(path) as opened:
        for frame in ImageSequence.Iterator(opened):
            frame = ImageOps.exif_transpose(frame)
            if images and frame.size != (images[0].shape[1], images[0].shape[0]):
                continue
            rgb, alpha = _frame_arrays(frame)
            images.append(rgb)
            alphas.append(alpha)
    if all(alpha is None for alpha in alphas):
        masks = np.zeros((len(images), 64, 64), np.float32)
    else:  # an opaque frame among transparent ones masks nothing
        opaque = np.zeros(images[0].shape[:2], np.float32)
        masks = np.stack([opaque if alpha is None else 1.0 - alpha for alpha in alphas])
    return torch.from_numpy(np.stack(images)), torch.from_numpy(masks)


def _next_counter(folder: Path, name: str, suffix: str = ".png") -> int:
    pattern = re.compile(re.escape(name) + r"_(\d{5,})_" + re.escape(suffix))
    found = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.fullmatch(p.name))]
    return max(found, default=0) + 1


def _check_not_empty(batch: torch.Tensor, where: str) -> None:
    """Refuse a batch of no images, or images of no pixels: there is nothing to save or show."""
    if batch.shape[0] == 0:
        raise EditError(where, "The batch is empty: it holds no images.",
                        "Check the node that feeds this input; it produced nothing.")
    if 0 in batch.shape[1:]:
        raise EditError(where, f"The images have no pixels (shape {tuple(batch.shape)}).",
                        "Check the node that feeds this input; it made an image 0 pixels wide or high.")


def _check_image_batch(images: object, where: str) -> None:
    """An IMAGE must be a non-empty [B,H,W,C] tensor with 1, 3 or 4 channels."""
    got = f"shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise EditError(where, f"Expected an IMAGE [B,H,W,C], got {got}.", "Connect an IMAGE output.")
    _check_not_empty(images, where)


def save_png_batch(images: torch.Tensor, prefix: str, kind: str, prompt: dict | None) -> list[dict]:
    """Write each image as ``<prefix>_00001_.png`` (numbered after the files already there)
    in the folder for ``kind``; return ComfyUI's ``{"filename", "subfolder", "type"}`` entries."""
    _check_image_batch(images, "Save Image › images" if kind == "output" else "Preview Image › images")
    folder, subfolder, name = _output_folder(prefix, kind, "Save Image")
    info = PngInfo()
    if prompt is not None:  # as ComfyUI does, so the file records what made it
        info.add_text("prompt", json.dumps(prompt, default=str))
    first = _next_counter(folder, name)
    entries = []
    for offset, image in enumerate(images):
        filename = f"{name}_{first + offset:05}_.png"
        comfy_to_pil(image).save(folder / filename, pnginfo=info, compress_level=4)
        entries.append({"filename": filename, "subfolder": subfolder, "type": kind})
    return entries


def _output_folder(prefix: str, kind: str, node: str) -> tuple[Path, str, str]:
    """(folder, subfolder, file name start) of ``prefix`` inside the folder for ``kind``, created."""
    root = current_context().folders[kind]
    subfolder, _, name = prefix.replace("\\", "/").rpartition("/")
    folder = (root / subfolder).resolve()
    if not folder.is_relative_to(root.resolve()):
        raise EditError(
            f"{node} › filename_prefix",
            f"{prefix!r} points outside the output folder.",
            "Use a name, or a sub-folder and a name such as 'edits/cat'.",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder, subfolder, name


class SaveAnimatedWEBP:
    """ComfyUI's core node of this name for the runner: the frames as one animated WebP file."""

    DESCRIPTION = "Saves the frames of a batch as one animated WebP in the output folder."
    CATEGORY = "image/animation"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    METHODS = {"default": 4, "fastest": 0, "slowest": 6}

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames, in order."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": "Start of the file name."}),
                "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                  "tooltip": "Frames per second."}),
                "lossless": ("BOOLEAN", {"default": True, "tooltip": "Lossless WebP."}),
                "quality": ("INT", {"default": 80, "min": 0, "max": 100, "tooltip": "Quality when lossy."}),
                "method": (list(cls.METHODS), {"tooltip": "Compression effort."}),
            },
            "hidden": {"prompt": "PROMPT"},
        }

    def save_images(self, images: torch.Tensor, fps: float = 6.0, filename_prefix: str = "ComfyUI",
                    lossless: bool = True, quality: int = 80, method: str = "default",
                    prompt: dict | None = None) -> dict:
        _check_image_batch(images, "SaveAnimatedWEBP › images")
        folder, subfolder, name = _output_folder(filename_prefix, "output", "SaveAnimatedWEBP")
        filename = f"{name}_{_next_counter(folder, name, '.webp'):05}_.webp"
        frames = [comfy_to_pil(image) for image in images]
        frames[0].save(folder / filename, save_all=True, append_images=frames[1:], duration=int(1000.0 / fps),
                       lossless=lossless, quality=quality, method=self.METHODS[method], loop=0)
        return {"ui": {"images": [{"filename": filename, "subfolder": subfolder, "type": "output"}],
                       "animated": (True,)}}


class LoadImage:
    DESCRIPTION = "Loads an image from the input folder; its alpha channel becomes the mask."
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    OUTPUT_TOOLTIPS = ("The image as RGB.", "1 where the image is transparent (the area to edit), else 0.")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        tooltip = "An image file in the input folder."
        return {"required": {"image": (input_image_names(), {"image_upload": True, "tooltip": tooltip})}}

    def load_image(self, image: str) -> tuple[torch.Tensor, torch.Tensor]:
        return load_image_file(current_context().input_dir / image)


class SaveImage:
    DESCRIPTION = "Saves images as PNG files in the output folder."
    CATEGORY = "image"
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    kind = "output"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {
                    "default": "ComfyUI",
                    "tooltip": "Start of the file names; may include a sub-folder, e.g. 'edits/cat'.",
                }),
            },
            "hidden": {"prompt": "PROMPT"},
        }

    def save_images(
        self, images: torch.Tensor, filename_prefix: str = "ComfyUI", prompt: dict | None = None
    ) -> dict:
        return {"ui": {"images": save_png_batch(images, filename_prefix, self.kind, prompt)}}


class PreviewImage(SaveImage):
    DESCRIPTION = "Shows images; the headless runner writes them to the preview folder."
    FUNCTION = "preview_images"
    kind = "temp"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {"images": ("IMAGE", {"tooltip": "The images to preview."})},
            "hidden": {"prompt": "PROMPT"},
        }

    def preview_images(self, images: torch.Tensor, prompt: dict | None = None) -> dict:
        return self.save_images(images, "ComfyUI_temp", prompt)


class MaskToImage:
    DESCRIPTION = "Shows a mask as a grey image."
    CATEGORY = "mask"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK", {"tooltip": "The mask to show."})}}

    def mask_to_image(self, mask: torch.Tensor):
        if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
            got = f"shape {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise EditError("Mask To Image › mask", f"Expected a MASK [B,H,W] or [H,W], got {got}.",
                            "Connect a MASK output.")
        batch = mask if mask.ndim == 3 else mask.unsqueeze(0)
        _check_not_empty(batch, "Mask To Image › mask")
        return (batch.float().unsqueeze(-1).expand(-1, -1, -1, 3),)


IO_NODE_CLASSES: dict[str, type] = {"LoadImage": LoadImage, "SaveImage": SaveImage, "PreviewImage": PreviewImage,
                                    "MaskToImage": MaskToImage, "SaveAnimatedWEBP": SaveAnimatedWEBP}
