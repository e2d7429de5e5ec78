"""Toy Scene: a picture from the toy world, the kind of picture the bundled toy models edit."""

from __future__ import annotations

from ..core.images import pixels_to_comfy
from ..core.toy.render import render
from ..core.toy.world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, Obj, Scene, caption
from .checks import checked


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
        return {
            "required": {
                "shape": (list(SHAPES), {"default": "circle", "tooltip": "The object's shape."}),
                "colour": (list(COLOURS), {"default": "red", "tooltip": "The object's colour."}),
                "size": (list(SIZES), {"default": "large", "tooltip": "The object's size."}),
                "position": (list(POSITIONS), {"default": "center", "tooltip": "Where the object sits."}),
                "background": (list(BACKGROUNDS), {"default": "sky", "tooltip": "The background."}),
                "pixels": ("INT", {"default": 64, "min": 8, "max": 1024, "step": 8,
                                   "tooltip": "Side of the square picture. The bundled toy models were "
                                              "trained at 16 and resize other sizes to it."}),
            },
        }

    @staticmethod
    def scene(shape: str, colour: str, size: str, position: str, background: str, **_) -> Scene:
        """The scene these inputs describe (the oracle scores edits of it)."""
        return Scene((Obj(shape, colour, size, position),), background)

    @checked("Toy Scene")
    def render(self, shape, colour, size, position, background, pixels):
        scene = self.scene(shape, colour, size, position, background)
        return (pixels_to_comfy(render(scene, pixels)[None]), caption(scene))
