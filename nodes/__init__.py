"""ComfyUI node classes (classic API), registered under prefixed ids that never change."""

from .edit import CycleEdit, EditImage
from .inpaint import MaskInpaint
from .loaders import LoadEditModel
from .loc import ApplyEditLora, BeforeAfterToLora, LoadEditLora, LoadLocHypernetwork, SaveEditLora
from .toy import ToyClip, ToyScene
from .video import VideoEdit

NODE_CLASS_MAPPINGS = {
    "UnpairedEdit_LoadEditModel": LoadEditModel,
    "UnpairedEdit_EditImage": EditImage,
    "UnpairedEdit_CycleEdit": CycleEdit,
    "UnpairedEdit_MaskInpaint": MaskInpaint,
    "UnpairedEdit_ToyScene": ToyScene,
    "UnpairedEdit_LoadLocHypernetwork": LoadLocHypernetwork,
    "UnpairedEdit_BeforeAfterToLora": BeforeAfterToLora,
    "UnpairedEdit_ApplyEditLora": ApplyEditLora,
    "UnpairedEdit_SaveEditLora": SaveEditLora,
    "UnpairedEdit_LoadEditLora": LoadEditLora,
    "UnpairedEdit_VideoEdit": VideoEdit,
    "UnpairedEdit_ToyClip": ToyClip,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "UnpairedEdit_LoadEditModel": "Load Edit Model (Unpaired Edit)",
    "UnpairedEdit_EditImage": "Edit Image (Unpaired Edit)",
    "UnpairedEdit_CycleEdit": "Cycle Edit (Unpaired Edit)",
    "UnpairedEdit_MaskInpaint": "Mask Inpaint (Unpaired Edit)",
    "UnpairedEdit_ToyScene": "Toy Scene (Unpaired Edit)",
    "UnpairedEdit_LoadLocHypernetwork": "Load LoC Hypernetwork (Unpaired Edit)",
    "UnpairedEdit_BeforeAfterToLora": "Before/After → Edit LoRA (Unpaired Edit)",
    "UnpairedEdit_ApplyEditLora": "Apply Edit LoRA (Unpaired Edit)",
    "UnpairedEdit_SaveEditLora": "Save Edit LoRA (Unpaired Edit)",
    "UnpairedEdit_LoadEditLora": "Load Edit LoRA (Unpaired Edit)",
    "UnpairedEdit_VideoEdit": "Video Edit (Unpaired Edit)",
    "UnpairedEdit_ToyClip": "Toy Clip (Unpaired Edit)",
}
