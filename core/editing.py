"""Edit, cycle-edit and inpaint whole images: fit, encode once, sample, decode, undo the fit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from .errors import EditError
from .generated_lora import merged
from .images import fit_to_model, non_finite
from .instructions import NotInvertible, reverse_or_invert
from .models.base import EditModel
from .models.conditioning import TextCond
from .samplers import EditSettings, Hooks, sample


def _fit(model: EditModel, pixels: torch.Tensor):
    return fit_to_model(pixels.to(model.device, model.dtype), model.factor, model.info.extra.get("image_size"))


def check_instruction(instruction: str, where: str, model: EditModel | None = None) -> str:
    """The instruction, stripped; empty only for a model with an edit LoRA (the LoRA says what to do)."""
    text = (instruction or "").strip()
    if not text and not (model is not None and model.edit_loras):
        raise EditError(where, "The instruction is empty.", "Type what to change, e.g. 'make the sky red'.")
    return text


def instruction_texts(model: EditModel, instruction: str | Sequence[str], negative: str,
                      n: int) -> tuple[TextCond, TextCond]:
    """(the instructions, the negative prompt) encoded in one call: one instruction for all ``n``
    pictures (or clips), or one each."""
    prompts = [instruction] if isinstance(instruction, str) else list(instruction)
    if len(prompts) not in (1, n):
        raise ValueError(f"{len(prompts)} instructions for {n} pictures: give one, or one per picture.")
    *texts, uncond = model.encode_text([*prompts, negative]).rows()
    return TextCond.cat(texts), uncond


def check_picture_model(model: EditModel, where: str) -> None:
    """A video model edits clips: refuse it where pictures are edited one by one."""
    if model.frames:
        raise EditError(f"{where} › edit_model", f"This is a video model ({model.family}): it edits clips, not "
                        "single pictures.", "Use Video Edit with it, or load a picture editor here.")


def _check_result(model: EditModel, where: str, result: torch.Tensor) -> None:
    """Refuse NaN or inf in what a pass made: saved, it is a black picture, and as a cycle error
    map it reads as a perfect cycle."""
    if non_finite(result):
        weights = "weights or edit LoRA" if model.edit_loras else "weights"
        raise EditError(f"{where} › edit_model", f"The edit came out as NaN or infinite values: the model "
                        f"overflowed (e.g. in float16) or its {weights} are broken.",
                        "Start ComfyUI with --force-fp32 to run the model in float32; if that does not help, "
                        "load another model file.")


def _sample(model: EditModel, source, text, uncond, settings: EditSettings, hooks: Hooks | None,
            reverse: bool = False) -> torch.Tensor:
    """Sample with the model's edit LoRAs merged, negated for a reverse edit (LoRA Reverse)."""
    loras = [(-delta if reverse else delta, strength) for delta, strength in model.edit_loras]
    with merged(model.denoiser, loras):
        return sample(model, source, text, uncond, settings, hooks)


@torch.no_grad()
def edit_pixels(model: EditModel, pixels: torch.Tensor, instruction: str | Sequence[str], settings: EditSettings,
                hooks: Hooks | None = None, negative: str = "", where: str = "Edit Image") -> torch.Tensor:
    """Edit ``pixels`` [B,3,H,W] in -1..1 by one instruction, or by one per picture, and return the
    result at the input's size."""
    check_picture_model(model, where)
    padded, fit = _fit(model, pixels)
    text, uncond = instruction_texts(model, instruction, negative, len(pixels))
    source = model.encode_source(padded)
    edited = model.decode(_sample(model, source, text, uncond, settings, hooks))
    _check_result(model, where, edited)
    return fit.undo(edited).float().clamp(-1, 1)


@torch.no_grad()
def inpaint_pixels(model: EditModel, pixels: torch.Tensor, mask: torch.Tensor, prompt: str, settings: EditSettings,
                   hooks: Hooks | None = None, negative: str = "", where: str = "Mask Inpaint") -> torch.Tensor:
    """Paint ``pixels`` [B,3,H,W] in -1..1 anew where ``mask`` [B,1,H,W] is 1 (an inpainting model,
    over the whole frame) and return the result at the input's size; the mask is fitted with the picture."""
    check_picture_model(model, where)
    both, fit = _fit(model, torch.cat([pixels, mask.to(pixels)], dim=1))
    text, uncond = model.encode_text([prompt, negative]).rows()
    source = model.encode_source(both[:, :3], both[:, 3:])
    painted = model.decode(_sample(model, source, text, uncond, settings, hooks))
    _check_result(model, where, painted)
    return fit.undo(painted).float().clamp(-1, 1)


@dataclass
class CycleResult:
    edited: torch.Tensor  # [B,3,H,W] in -1..1
    reconstruction: torch.Tensor  # [B,3,H,W] in -1..1
    error: torch.Tensor  # [B,H,W] mean absolute error per pixel, 0..1
    score: float  # 1 - mean error: 1.0 means the reverse edit restored the source exactly
    reverse_instruction: str


@torch.no_grad()
def cycle_edit(model: EditModel, pixels: torch.Tensor, instruction: str, reverse_instruction: str | None,
               settings: EditSettings, hooks: Hooks | None = None, where: str = "Cycle Edit") -> CycleResult:
    """Forward edit with ``instruction``, then edit the result back with the reverse instruction.

    The three prompts (forward, reverse, empty) are encoded in one call and the empty one is
    shared by both passes; each pass encodes its source once for all of its steps. A model's
    edit LoRAs are negated for the reverse pass.
    """
    check_picture_model(model, where)
    reverse = reverse_for(model, instruction, reverse_instruction, where)  # refused before anything is sampled
    hooks = replace(hooks or Hooks(), offset=0, total=2 * settings.steps)  # one bar over both passes
    padded, fit = _fit(model, pixels)
    forward_text, reverse_text, uncond = model.encode_text([instruction, reverse, ""]).rows()
    edited = model.decode(_sample(model, model.encode_source(padded), forward_text, uncond, settings, hooks))
    _check_result(model, where, edited)
    edited = edited.clamp(-1, 1)
    hooks = replace(hooks, offset=settings.steps)
    reconstruction = model.decode(_sample(model, model.encode_source(edited), reverse_text, uncond, settings, hooks,
                                          reverse=True))
    _check_result(model, where, reconstruction)
    edited, reconstruction = fit.undo(edited).float().clamp(-1, 1), fit.undo(reconstruction).float().clamp(-1, 1)
    error = ((reconstruction - pixels.to(reconstruction)).abs() / 2).mean(dim=1)
    return CycleResult(edited, reconstruction, error.cpu(), float(1 - error.mean()), reverse)


def reverse_for(model: EditModel, instruction: str, reverse_instruction: str | None, where: str = "Cycle Edit") -> str:
    """The reverse instruction a cycle edit uses: the user's, the derived one, or "" when the
    model's edit LoRA is the instruction (negated, it is the reverse); else an EditError."""
    if model.edit_loras and not instruction.strip():  # the negated LoRA is the reverse edit
        return (reverse_instruction or "").strip()
    return derived_reverse(instruction, reverse_instruction, where)


def derived_reverse(instruction: str, reverse_instruction: str | None, where: str = "Cycle Edit") -> str:
    """The user's reverse instruction when given, else the one derived from ``instruction``; else
    an EditError that asks for it."""
    try:
        return reverse_or_invert(instruction, reverse_instruction)
    except NotInvertible as err:
        raise EditError(f"{where} › reverse_instruction", err.problem,
                        "Type the instruction that undoes it in `reverse_instruction`, or reword "
                        "`instruction`.") from None
