"""Edit Image and Cycle Edit: thin glue from ComfyUI tensors and widgets to core.editing."""

from __future__ import annotations

from contextlib import contextmanager

from ..core.editing import check_instruction, cycle_edit, derived_reverse, edit_pixels, reverse_for
from ..core.errors import EditError
from ..core.images import comfy_to_pixels, pixels_to_comfy, to_rgb
from ..core.models import EditModel
from ..core.samplers import EditSettings, Hooks
from . import host
from .checks import checked
from .loaders import MODEL_TYPE


def sampling_inputs() -> dict:
    return {
        "steps": ("INT", {"default": 0, "min": 0, "max": 200,
                          "tooltip": "Denoising steps. 0 uses the model's recommended number."}),
        "guidance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 30.0, "step": 0.1, "round": 0.01,
                               "tooltip": "How strongly to follow the instruction. 0 uses the model's "
                                          "recommended value; 1 turns text guidance off."}),
        "image_guidance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.05, "round": 0.01,
                                     "tooltip": "InstructPix2Pix models: how closely to stay with the source "
                                                "image. 0 uses the model's recommended value. Ignored by "
                                                "FLUX-style models."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                         "tooltip": "Seed of the starting noise; the same seed gives the same edit."}),
    }


def _common_inputs() -> dict:
    return {
        "edit_model": (MODEL_TYPE, {"tooltip": "From Load Edit Model."}),
        "image": ("IMAGE", {"tooltip": "The image(s) to edit. Every image of a batch is edited with the "
                                       "same instruction; sides that are not a multiple of the model's "
                                       "factor are padded and cropped back (models trained at one size, "
                                       "like the toy ones, get the picture resized to it and back)."}),
        "instruction": ("STRING", {"multiline": True, "default": "",
                                   "tooltip": "What to change, as an instruction: 'make the sky red'. May be "
                                              "empty when an edit LoRA (Apply Edit LoRA) says what to change."}),
    }


def settings_for(model: EditModel, steps: int, guidance: float, image_guidance: float, seed: int) -> EditSettings:
    info = model.info
    return EditSettings(steps=steps or info.steps, guidance=guidance or info.guidance,
                        image_guidance=image_guidance or info.image_guidance, seed=seed)


def check_model(model, where: str) -> EditModel:
    if not isinstance(model, EditModel):
        raise EditError(where, f"Expected an edit model, got {type(model).__name__}.", "Connect Load Edit Model.")
    return model


def check_editor(model, where: str) -> EditModel:
    """A model that edits whole pictures by instruction (not an inpainter, which needs a mask)."""
    model = check_model(model, where)
    if model.inpaints:
        raise EditError(where, f"'{model.info.name or model.family}' is an inpainting model: it paints a masked "
                        "region from a prompt and does not follow instructions.",
                        "Use it in Mask Inpaint, or load an edit model here.")
    return model


@contextmanager
def on_device(model: EditModel):
    """Run on ComfyUI's compute device, making room first, and give the memory back after."""
    device = host.compute_device()
    size = sum(p.numel() * p.element_size() for m in model.modules().values() for p in m.parameters())
    host.make_room(size, device)
    model.to(device)
    try:
        yield
    finally:
        model.to(host.offload_device())


class EditImage:
    """Edits an image by following a text instruction."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/edit"
    FUNCTION = "edit"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("edited",)
    OUTPUT_TOOLTIPS = ("The edited image(s), same size as the input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**_common_inputs(), **sampling_inputs()}}

    @checked("Edit Image")
    def edit(self, edit_model, image, instruction, steps, guidance, image_guidance, seed):
        model = check_editor(edit_model, "Edit Image › edit_model")
        pixels = comfy_to_pixels(to_rgb(image, "Edit Image › image"))
        instruction = check_instruction(instruction, "Edit Image › instruction", model)
        settings = settings_for(model, steps, guidance, image_guidance, seed)
        hooks = Hooks(progress=host.progress(settings.steps), should_stop=host.should_stop)
        with on_device(model):
            edited = edit_pixels(model, pixels, instruction, settings, hooks)
        return (pixels_to_comfy(edited),)


class CycleEdit:
    """Edits with the instruction, then edits the result back with the reverse instruction.

    How well the source comes back tells how faithful the edit was: the error map shows
    where it was not, the score (1 = perfect) sums it up.
    """

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/edit"
    FUNCTION = "cycle"
    RETURN_TYPES = ("IMAGE", "IMAGE", "MASK", "FLOAT")
    RETURN_NAMES = ("edited", "reconstruction", "cycle_error", "score")
    OUTPUT_TOOLTIPS = ("The forward edit.", "The reverse edit of the forward edit: ideally the source again.",
                       "Per-pixel reconstruction error, 0..1 (1 = completely different).",
                       "1 minus the mean reconstruction error over the batch (1 = perfect cycle).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {**_common_inputs(), **sampling_inputs()},
            "optional": {
                "reverse_instruction": ("STRING", {"multiline": True, "default": "",
                                                   "tooltip": "The instruction that undoes the edit. Leave empty "
                                                              "to derive it (add/remove, A into B, from A to B, "
                                                              "bigger/smaller, ...); yours always wins."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, instruction: str = "", reverse_instruction: str = "") -> bool | str:
        """ComfyUI and the runner call this for every node before any runs, so a reverse that cannot
        be derived is refused before anything is written: ComfyUI then runs none of the outputs that
        depend on this node, the runner nothing at all. Linked or blank inputs are left to run time
        (a blank instruction may mean the edit LoRA)."""
        if not isinstance(instruction, str) or not instruction.strip() or not isinstance(reverse_instruction, str):
            return True
        try:
            derived_reverse(instruction, reverse_instruction)
        except EditError as err:
            return str(err)
        return True

    @checked("Cycle Edit")
    def cycle(self, edit_model, image, instruction, steps, guidance, image_guidance, seed, reverse_instruction=""):
        model = check_editor(edit_model, "Cycle Edit › edit_model")
        pixels = comfy_to_pixels(to_rgb(image, "Cycle Edit › image"))
        instruction = check_instruction(instruction, "Cycle Edit › instruction", model)
        reverse = reverse_for(model, instruction, reverse_instruction)  # before the model takes any memory
        settings = settings_for(model, steps, guidance, image_guidance, seed)
        hooks = Hooks(progress=host.progress(2 * settings.steps), should_stop=host.should_stop)
        with on_device(model):
            result = cycle_edit(model, pixels, instruction, reverse, settings, hooks)
        outputs = (pixels_to_comfy(result.edited), pixels_to_comfy(result.reconstruction),
                   result.error.float().clamp(0, 1), result.score)
        # The front-end extension (web/cycle_score.js) shows these on the node.
        ui = {"cycle_score": [result.score], "reverse_instruction": [result.reverse_instruction]}
        return {"ui": ui, "result": outputs}
