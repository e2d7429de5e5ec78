"""ComfyUI node classes (classic API), registered under prefixed ids that never change."""

from .edit import CycleEdit, EditImage
from .loaders import LoadEditModel
from .toy import ToyScene

NODE_CLASS_MAPPINGS = {
    "UnpairedEdit_LoadEditModel": LoadEditModel,
    "UnpairedEdit_EditImage": EditImage,
    "UnpairedEdit_CycleEdit": CycleEdit,
    "UnpairedEdit_ToyScene": ToyScene,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "UnpairedEdit_LoadEditModel": "Load Edit Model (Unpaired Edit)",
    "UnpairedEdit_EditImage": "Edit Image (Unpaired Edit)",
    "UnpairedEdit_CycleEdit": "Cycle Edit (Unpaired Edit)",
    "UnpairedEdit_ToyScene": "Toy Scene (Unpaired Edit)",
}
