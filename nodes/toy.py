"""Toy Scene and Toy Clip: pictures and clips of the toy world, what the bundled toy models edit."""

from __future__ import annotations

from ..core.errors import EditError
from ..core.images import pixels_to_comfy
from ..core.toy.clips import Clip
from ..core.toy.render import render
from ..core.toy.world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, Obj, Scene, caption
from .checks import checked

STILL = "none (still)"


def _object_inputs(position: str) -> dict:
    return {
        "shape": (list(SHAPES), {"default": "circle", "tooltip": "The object's shape."}),
        "colour": (list(COLOURS), {"default": "red", "tooltip": "The object's colour."}),
        "size": (list(SIZES), {"default": "large", "tooltip": "The object's size."}),
        "position": (list(POSITIONS), {"default": position, "tooltip": "Where the object sits (a clip: starts)."}),
    }


BACKGROUND = (list(BACKGROUNDS), {"default": "sky", "tooltip": "The background."})
PIXELS = ("INT", {"default": 64, "min": 8, "max": 1024, "step": 8,
                  "tooltip": "Side of the square picture. The bundled toy models were trained at 16 and resize "
                             "other sizes to it."})


class ToyScene:
    """Renders one coloured shape on a background, with its caption."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/toy"
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("image", "caption")
    OUTPUT_TOOLTIPS = ("The picture.", "Its caption, in the words the toy models know.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**_object_inputs("center"), "background": BACKGROUND, "pixels": PIXELS}}

    @staticmethod
    def scene(shape: str, colour: str, size: str, position: str, background: str, **_) -> Scene:
        """The scene these inputs describe (the oracle scores edits of it)."""
        return Scene((Obj(shape, colour, size, position),), background)

    @checked("Toy Scene")
    def render(self, shape, colour, size, position, background, pixels):
        scene = self.scene(shape, colour, size, position, background)
        return (pixels_to_comfy(render(scene, pixels)[None]), caption(scene))


class ToyClip:
    """Renders a toy-world clip: one shape on a background, gliding towards another place or still."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/toy"
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("frames", "caption")
    OUTPUT_TOOLTIPS = ("The frames as an IMAGE batch.", "Its caption, in the words the toy models know.")

    @classmethod
    def INPUT_TYPES(cls):
        frames = ("INT", {"default": 8, "min": 2, "max": 256,
                          "tooltip": "How many frames. The bundled toy video model was trained on 8."})
        heading = ([STILL, *POSITIONS], {"default": "right",
                                         "tooltip": "Where it glides (half of the way there), or none: it stays still."})
        return {"required": {**_object_inputs("left"), "heading": heading, "background": BACKGROUND, "frames": frames,
                             "pixels": PIXELS}}

    @staticmethod
    def clip(shape: str, colour: str, size: str, position: str, heading: str, background: str, **_) -> Clip:
        """The clip these inputs describe (the clip oracle scores edits of it)."""
        scene = ToyScene.scene(shape, colour, size, position, background)
        if heading == STILL:
            return Clip(scene)
        if heading == position:
            raise EditError("Toy Clip › heading", f"The object starts at the {position}: it cannot head there.",
                            f"Pick another heading, or '{STILL}'.")
        return Clip(scene, scene.objects[0], heading)

    @checked("Toy Clip")
    def render(self, shape, colour, size, position, heading, background, frames, pixels):
        clip = self.clip(shape, colour, size, position, heading, background)
        video = clip.render(frames, pixels)  # [3, F, H, W]
        return (pixels_to_comfy(video.transpose(0, 1)), clip.caption)

