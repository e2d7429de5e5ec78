"""Load Edit Model: diffusers folders, our single files, built-in tiny models; optional adapter."""

from __future__ import annotations

from pathlib import Path

from ..core.builtin import MODELS, builtin_name, load_builtin
from ..core.errors import EditError
from ..core.models import EditModel
from . import host
from .checks import checked, libraries

TITLE = "Load Edit Model"
MODEL_TYPE = "UNPAIRED_EDIT_MODEL"


def read_model(path: Path) -> EditModel:
    with libraries(TITLE):  # loading needs diffusers and transformers, imported on first use
        from ..core.model_files import load_model
    return load_model(path, f"{TITLE} › model_name", clip_tokenizer=host.clip_tokenizer_dir())


def read_builtin(name: str) -> EditModel:
    with libraries(TITLE):
        return load_builtin(name, f"{TITLE} › model_name", clip_tokenizer=host.clip_tokenizer_dir())


NO_ADAPTER = "none"


def model_choices() -> list[str]:
    files = [f"{kind}/{name}" for kind in host.MODEL_FILE_KINDS for name in host.list_files(kind)]
    folders = [f"diffusers/{name}" for name in host.list_diffusers_folders()]
    return folders + files + [builtin.label(name) for name, builtin in MODELS.items()]  # core/builtin.py


def open_model(choice: str) -> EditModel:
    builtin = builtin_name(choice)
    if builtin:
        return read_builtin(builtin)
    kind, _, name = choice.partition("/")
    path = host.full_path(kind, name) if name else None
    if path is None:
        raise EditError(f"{TITLE} › model_name", f"'{choice}' was not found in the models folders.",
                        "Put the model in models/diffusers, models/checkpoints or models/diffusion_models "
                        "and refresh (press R in ComfyUI).")
    return read_model(path)


class LoadEditModel:
    """Loads an instruction-editing model (InstructPix2Pix-family or FLUX-Kontext-family)."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("edit_model",)
    OUTPUT_TOOLTIPS = ("The loaded edit model, for Edit Image and Cycle Edit.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (model_choices(), {"tooltip": "A diffusers folder from models/diffusers, or a "
                               ".safetensors from models/checkpoints or models/diffusion_models: one saved by "
                               "Unpaired Edit, or an original InstructPix2Pix checkpoint. The builtin/ entries "
                               "are random tiny models for testing."}),
            },
            "optional": {
                "adapter": ([NO_ADAPTER] + host.list_files("loras"), {"default": NO_ADAPTER,
                            "tooltip": "An Unpaired Edit LoRA from models/loras trained on this base model."}),
            },
        }

    @checked(TITLE)
    def load(self, model_name: str, adapter: str = NO_ADAPTER):
        model = open_model(model_name)
        if adapter != NO_ADAPTER:
            where = f"{TITLE} › adapter"
            with libraries(TITLE):
                from ..core.adapters import load_adapter
            load_adapter(model, host.find_file("loras", adapter, where), where=where)
        model.to(dtype=host.compute_dtype(host.compute_device()))
        return (model,)
