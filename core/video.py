"""Edit clips: a video model edits a clip as one, chunk by chunk with blended seams; an image
model edits each frame, every frame from the same noise.

Frames are ``[F, 3, H, W]`` in -1..1 here (the node converts ComfyUI's ``[F, H, W, C]``). Only
one chunk is on the model's device at a time and each chunk is decoded before the next is
encoded, so memory does not grow with the number of frames; results gather on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from .editing import _check_result, _fit, _sample, edit_pixels, instruction_texts
from .errors import EditError
from .models.base import EditModel
from .samplers import EditSettings, Hooks


@dataclass(frozen=True)
class Chunking:
    frames: int = 16  # frames a chunk holds
    overlap: int = 4  # frames two neighbouring chunks share, cross-faded
    anchor: bool = True  # picture editors: where a frame's source equals the first frame's, use its edit


STILL = 2 / 127.5  # two 8-bit levels in -1..1: "this pixel did not move"


def check_frames(frames: torch.Tensor | Sequence[torch.Tensor], where: str = "Video Edit") -> torch.Tensor:
    """Frames [F,3,H,W] (a tensor, or a list of [3,H,W] frames of one size) with at least two frames."""
    if not isinstance(frames, torch.Tensor):
        sizes = {tuple(f.shape) for f in frames}
        if len(sizes) > 1:
            first = tuple(frames[0].shape)
            bad = next(i for i, f in enumerate(frames) if tuple(f.shape) != first)
            raise EditError(f"{where} › frames", f"Frame {bad} is {tuple(frames[bad].shape[-2:])} pixels, frame 0 "
                            f"is {first[-2:]}: a clip's frames share one size.",
                            "Resize the frames to one size first (e.g. ComfyUI's Upscale Image).")
        frames = torch.stack(list(frames)) if frames else torch.zeros(0, 3, 1, 1)
    if len(frames) == 0:
        raise EditError(f"{where} › frames", "The clip has no frames.", "Connect a batch of frames (e.g. Load Video).")
    if len(frames) == 1:
        raise EditError(f"{where} › frames", "One frame is a still picture, not a clip.",
                        "Edit it with Edit Image, or connect two or more frames.")
    return frames


def check_chunking(chunking: Chunking, where: str = "Video Edit") -> None:
    if chunking.frames < 2:
        raise EditError(f"{where} › chunk_frames", f"A chunk of {chunking.frames} frames is no clip.",
                        "Set chunk_frames to 2 or more.")
    if not 0 <= chunking.overlap < chunking.frames:
        raise EditError(f"{where} › overlap", f"An overlap of {chunking.overlap} frames does not fit chunks of "
                        f"{chunking.frames}: neighbouring chunks must share fewer frames than a chunk holds.",
                        f"Set overlap between 0 and {chunking.frames - 1}.")


def chunk_starts(n: int, chunking: Chunking) -> list[int]:
    """Where each chunk starts: every ``frames - overlap`` frames, the last one ending at the last frame."""
    if n <= chunking.frames:
        return [0]
    step = chunking.frames - chunking.overlap
    starts = list(range(0, n - chunking.frames, step))
    return starts + [n - chunking.frames]


@torch.no_grad()
def edit_clips(model: EditModel, clips: torch.Tensor, instructions: str | Sequence[str], settings: EditSettings,
               hooks: Hooks | None = None, negative: str = "", where: str = "Video Edit") -> torch.Tensor:
    """A video model's edit of whole clips [B,3,F,H,W] in -1..1, by one instruction or one per clip."""
    b, _, f, h, w = clips.shape
    folded, fit = _fit(model, clips.transpose(1, 2).reshape(b * f, 3, h, w))  # every frame fitted alike
    padded = folded.reshape(b, f, *folded.shape[1:]).transpose(1, 2)
    text, uncond = instruction_texts(model, instructions, negative, b)
    edited = model.decode(_sample(model, model.encode_source(padded), text, uncond, settings, hooks))
    _check_result(model, where, edited)
    frames = fit.undo(edited.transpose(1, 2).reshape(b * f, *edited.shape[1:2], *edited.shape[3:]))
    return frames.reshape(b, f, *frames.shape[1:]).transpose(1, 2).float().clamp(-1, 1)


def edit_frames(model: EditModel, frames: torch.Tensor, instruction: str, settings: EditSettings,
                hooks: Hooks | None = None, negative: str = "", where: str = "Video Edit") -> torch.Tensor:
    """An image model's edit of frames [N,3,H,W], every frame from the same noise (so a still part
    of the clip is drawn alike in every frame)."""
    return edit_pixels(model, frames, instruction, replace(settings, shared_noise=True), hooks, negative, where)


def edit_video(model: EditModel, frames: torch.Tensor | Sequence[torch.Tensor], instruction: str,
               settings: EditSettings, chunking: Chunking, hooks: Hooks | None = None, negative: str = "",
               where: str = "Video Edit") -> torch.Tensor:
    """Edit frames [F,3,H,W] in -1..1 chunk by chunk; returns [F,3,H,W] on the CPU. Where chunks
    overlap, the earlier chunk's frames fade linearly into the later one's."""
    frames = check_frames(frames, where)
    check_chunking(chunking, where)
    if frames.dim() != 4:
        raise EditError(f"{where} › frames", f"Frames are [F, 3, H, W]; got {tuple(frames.shape)}.",
                        "Connect an IMAGE batch of frames.")
    hooks = hooks or Hooks()
    n, starts = len(frames), chunk_starts(len(frames), chunking)
    size = min(chunking.frames, n)
    shared = [0] + [max(0, a + size - b) for a, b in zip(starts, starts[1:])] + [0]  # frames chunk i shares with i-1
    out = torch.zeros(frames.shape, dtype=torch.float32)
    weight = torch.zeros(n)
    anchor = None  # (source, edit) of the first frame, for a picture editor with chunking.anchor
    for i, start in enumerate(starts):
        hooks.check()
        part = frames[start:start + chunking.frames].to(model.device, model.dtype)
        chunk_hooks = replace(hooks, offset=i * settings.steps, total=len(starts) * settings.steps)
        if model.frames:
            edited = edit_clips(model, part.transpose(0, 1)[None], instruction, settings, chunk_hooks, negative,
                                where)[0].transpose(0, 1)
        else:
            edited = edit_frames(model, part, instruction, settings, chunk_hooks, negative, where).cpu()
            if chunking.anchor:
                anchor = anchor or (frames[0].float().cpu(), edited[0])
                edited = anchored(edited, frames[start:start + len(part)].float().cpu(), *anchor)
        fade = _fade(len(part), shared[i], shared[i + 1])
        out[start:start + len(part)] += edited.cpu() * fade.view(-1, 1, 1, 1)
        weight[start:start + len(part)] += fade
    return out / weight.view(-1, 1, 1, 1)


def anchored(edited: torch.Tensor, sources: torch.Tensor, anchor_source: torch.Tensor,
             anchor_edit: torch.Tensor) -> torch.Tensor:
    """Frames [N,3,H,W] whose pixels that did not move since the anchor frame (source within
    ``STILL``, also around them: an edge moved one pixel is a moved edge) take the anchor's edit,
    so what stands still is edited exactly alike in every frame; moved pixels keep their own edit."""
    moved = (sources - anchor_source).abs().amax(dim=1, keepdim=True) > STILL
    moved = torch.nn.functional.max_pool2d(moved.float(), 3, stride=1, padding=1)
    return moved * edited + (1 - moved) * anchor_edit


def _fade(n: int, head: int, tail: int) -> torch.Tensor:
    """A chunk's blend weights: rising over the ``head`` frames it shares with the chunk before,
    falling over the ``tail`` frames it shares with the next; two chunks' weights sum to 1."""
    w = torch.ones(n)
    if head:
        w[:head] = torch.arange(1, head + 1) / (head + 1)
    if tail:
        w[n - tail:] = torch.arange(tail, 0, -1) / (tail + 1)
    return w
