"""Mask Inpaint: thin glue from ComfyUI's IMAGE, MASK and widgets to core.repaint."""

from __future__ import annotations

import torch

from ..core.errors import EditError
from ..core.images import to_rgb
from ..core.regions import extend_canvas
from ..core.repaint import Area, check_mask, composite, plan, repaint
from ..core.samplers import Hooks
from . import host
from .checks import checked
from .edit import sampling_inputs, check_model, on_device, settings_for
from .loaders import MODEL_TYPE

MAX_SIDE = 8192  # an extended canvas beyond this is refused before any memory is taken
EXTEND = ("extend_left", "extend_top", "extend_right", "extend_bottom")


def _pixels(tooltip: str, default: int, maximum: int = 1024) -> tuple[str, dict]:
    return ("INT", {"default": default, "min": 0, "max": maximum, "tooltip": tooltip})


class MaskInpaint:
    """Repaints the masked part of an image, and nothing else: fills it from a prompt with an
    inpainting model, or edits it by instruction with any edit model. Extend the canvas to outpaint.

    Each masked region is cropped with some context, sampled at the model's working size and
    stitched back with a feathered seam; pixels the grown-and-feathered mask does not reach are
    returned exactly as they came in.
    """

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/edit"
    FUNCTION = "inpaint"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "blend")
    OUTPUT_TOOLTIPS = ("The image(s) with the masked regions repainted (extended by the extend inputs).",
                       "How much of each pixel was repainted (1 = all, 0 = the input's pixel, exactly).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "edit_model": (MODEL_TYPE, {"tooltip": "From Load Edit Model: an inpainting model fills the mask from "
                                                   "the prompt; an edit model follows the prompt as an instruction "
                                                   "inside the mask."}),
            "image": ("IMAGE", {"tooltip": "The image(s) to repaint."}),
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "Inpainting models: what the masked region should show (may be empty "
                                             "to continue the picture). Edit models: the instruction to carry out "
                                             "there, e.g. 'make it red'."}),
            **sampling_inputs(),
            "grow": _pixels("Grow the mask by this many pixels before repainting, so the edit covers the "
                            "object's edge.", 4, 256),
            "feather": _pixels("Fade the repainted pixels into the image over this many pixels outside the "
                               "grown mask (0: a hard edge).", 8, 256),
            "context": _pixels("Pixels of the image around each masked region that the model sees (and may "
                               "not change).", 64),
            "size": _pixels("The side the crops are sampled at (their area; sides kept in proportion). 0 "
                            "uses the model's working size (512 for SD 1.5, what a toy model was trained at).",
                            0, 4096),
            **{name: _pixels(f"Outpaint: extend the canvas by this many pixels on the {name[7:]} (new pixels "
                             "are masked).", 0, MAX_SIDE) for name in EXTEND},
        }, "optional": {
            "mask": ("MASK", {"tooltip": "Where to repaint (1) and where to keep (0), values 0..1 read as yes from "
                                         "0.5: one mask for all images or one each, the images' size. Leave it "
                                         "out to outpaint only the extended border."}),
        }}

    @checked("Mask Inpaint")
    def inpaint(self, edit_model, image, prompt, steps, guidance, image_guidance, seed, grow, feather, context, size,
                extend_left, extend_top, extend_right, extend_bottom, mask=None):
        model = check_model(edit_model, "Mask Inpaint › edit_model")
        image = to_rgb(image, "Mask Inpaint › image")
        mask = torch.zeros(image.shape[:3]) if mask is None else check_mask(mask, image, "Mask Inpaint › mask")
        extend = dict(zip(EXTEND, (extend_left, extend_top, extend_right, extend_bottom)))
        height, width = image.shape[1] + extend_top + extend_bottom, image.shape[2] + extend_left + extend_right
        if max(height, width) > MAX_SIDE:
            grown = "extend_top/extend_bottom" if height > MAX_SIDE else "extend_left/extend_right"
            raise EditError(f"Mask Inpaint › {grown}", f"The extended canvas would be {width}x{height} pixels; "
                            f"the largest side this node makes is {MAX_SIDE}.", "Extend by fewer pixels.")
        canvas = image.movedim(-1, 1).float()  # composited in ComfyUI's 0..1, so kept pixels stay exact
        if any(extend.values()):
            canvas, mask = extend_canvas(canvas, mask, extend_left, extend_top, extend_right, extend_bottom)
        todo = plan(mask, Area(grow=grow, feather=feather, context=context, size=size))
        if not todo.crops:  # nothing masked: the input as it came, without sampling
            return canvas.movedim(1, -1), todo.weights
        settings = settings_for(model, steps, guidance, image_guidance, seed)
        hooks = Hooks(progress=host.progress(len(todo.crops) * settings.steps), should_stop=host.should_stop)
        with on_device(model):
            painted = repaint(model, canvas * 2 - 1, todo, prompt, settings, hooks)
        painted = [(i, box, (crop.float().cpu() / 2 + 0.5).clamp(0, 1)) for i, box, crop in painted]
        return composite(canvas, painted, todo.weights).movedim(1, -1), todo.weights
