"""LoRA of Change nodes: a before/after picture pair becomes an edit LoRA to apply, save and share."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..core.builtin import LOC_HYPERNETWORKS, WEIGHTS
from ..core.errors import EditError
from ..core.generated_lora import LoraDelta
from ..core.images import comfy_to_pixels, non_finite, to_rgb
from . import host
from .checks import checked, libraries
from .edit import check_model
from .loaders import MODEL_TYPE

if TYPE_CHECKING:  # both import transformers: the nodes import them when they run
    from ..core.edit_lora import EditLora
    from ..core.loc import LocHypernetwork

LOC_TYPE = "UNPAIRED_EDIT_LOC"
LORA_TYPE = "UNPAIRED_EDIT_LORA"
HYPERNETWORKS = "loc_hypernetworks"  # models/loc_hypernetworks
host.register_folder(HYPERNETWORKS)
BUILTIN = {builtin.label(name): WEIGHTS / builtin.file for name, builtin in LOC_HYPERNETWORKS.items()}


class LoadLocHypernetwork:
    """Loads a LoRA of Change hypernetwork, which turns a before/after pair into an edit LoRA
    for the edit model it was trained with."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/lora_of_change"
    FUNCTION = "load"
    RETURN_TYPES = (LOC_TYPE,)
    RETURN_NAMES = ("hypernetwork",)
    OUTPUT_TOOLTIPS = ("The hypernetwork, for Before/After → Edit LoRA.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "hypernetwork_name": (host.list_files(HYPERNETWORKS) + list(BUILTIN), {
                "tooltip": "A file in models/loc_hypernetworks, written by `python -m unpaired_edit.training "
                           "loc` (hypernetwork.safetensors), or the bundled toy-world one."}),
        }}

    @checked("Load LoC Hypernetwork")
    def load(self, hypernetwork_name):
        with libraries("Load LoC Hypernetwork"):
            from ..core.loc import load_hypernetwork
        where = "Load LoC Hypernetwork › hypernetwork_name"
        path = BUILTIN.get(hypernetwork_name) or host.find_file(HYPERNETWORKS, hypernetwork_name, where)
        return (load_hypernetwork(path, where),)


class BeforeAfterToLora:
    """Shows the edit instead of saying it: from a picture before and after the change, makes an
    edit LoRA that makes the same change to other pictures (Apply Edit LoRA)."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/lora_of_change"
    FUNCTION = "generate"
    RETURN_TYPES = (LORA_TYPE,)
    RETURN_NAMES = ("edit_lora",)
    OUTPUT_TOOLTIPS = ("The edit as a LoRA for the hypernetwork's edit model.",)
    _cache: OrderedDict[str, EditLora] = OrderedDict()  # identical inputs give the same LoRA
    CACHE_SIZE = 16

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "hypernetwork": (LOC_TYPE, {"tooltip": "From Load LoC Hypernetwork."}),
            "before": ("IMAGE", {"tooltip": "The picture before the edit. Any size: the hypernetwork "
                                            "looks at both pictures at its own size."}),
            "after": ("IMAGE", {"tooltip": "The same picture after the edit. A batch of several pairs "
                                           "(same count as before) gives their average edit."}),
        }}

    @checked("Before/After → Edit LoRA")
    def generate(self, hypernetwork, before, after):
        with libraries("Before/After → Edit LoRA"):
            from ..core.edit_lora import EditLora
        network, meta = hypernetwork.network, hypernetwork.meta
        before = comfy_to_pixels(to_rgb(before, "Before/After → Edit LoRA › before"))
        after = comfy_to_pixels(to_rgb(after, "Before/After → Edit LoRA › after"))
        if len(before) != len(after):
            raise EditError("Before/After → Edit LoRA › after", f"{len(before)} before picture(s) but "
                            f"{len(after)} after picture(s).", "Give one after picture for each before picture.")
        key = _fingerprint(network, before, after)
        if key not in self._cache:
            with torch.no_grad():
                delta = network(before, after).mean()
            check_lora(delta)
            # The entry holds the network too: while it is cached, no other object can take its id.
            self._cache[key] = (network, EditLora(delta, meta["family"], meta["base_hash"], meta.get("base_name", "")))
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return (self._cache[key][1],)


def check_lora(delta: LoraDelta) -> None:
    """Refuse a LoRA with NaN or inf in it: merged, it would make every edit NaN."""
    if bad := sum(non_finite(t) for t in (*delta.down.values(), *delta.up.values())):
        raise EditError("Before/After → Edit LoRA › hypernetwork", f"The edit LoRA came out with {bad} NaN or "
                        "infinite values: the hypernetwork's weights are broken.",
                        "Load another hypernetwork file, or retrain this one.")


def _fingerprint(network: LocHypernetwork, *pictures: torch.Tensor) -> str:
    h = hashlib.sha1(str(id(network)).encode())
    for p in pictures:
        h.update(str(tuple(p.shape)).encode())
        h.update(p.contiguous().numpy().tobytes())
    return h.hexdigest()


class ApplyEditLora:
    """Gives an edit model an edit LoRA: Edit Image and Cycle Edit then make that edit (leave the
    instruction empty); Cycle Edit undoes it with the negated LoRA."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/lora_of_change"
    FUNCTION = "apply"
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("edit_model",)
    OUTPUT_TOOLTIPS = ("The edit model with the LoRA (merged while sampling; the input model is unchanged).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "edit_model": (MODEL_TYPE, {"tooltip": "The edit model the hypernetwork was trained with."}),
            "edit_lora": (LORA_TYPE, {"tooltip": "From Before/After → Edit LoRA or Load Edit LoRA."}),
            "strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05,
                                   "tooltip": "How much of the edit: 1 as shown, 0 none, -1 the reverse edit."}),
        }}

    @checked("Apply Edit LoRA")
    def apply(self, edit_model, edit_lora, strength):
        model = check_model(edit_model, "Apply Edit LoRA › edit_model")
        edit_lora.check_fits(model, "Apply Edit LoRA › edit_lora")
        return (model.with_edit_lora(edit_lora.delta, strength),)


class SaveEditLora:
    """Saves an edit LoRA to models/loras (safetensors, with the edit model it belongs to)."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/lora_of_change"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "edit_lora": (LORA_TYPE, {"tooltip": "The LoRA to save."}),
            "filename_prefix": ("STRING", {"default": "edit_lora/edit",
                                           "tooltip": "Path under models/loras, without extension; a counter "
                                                      "is added so nothing is overwritten."}),
        }}

    @checked("Save Edit LoRA")
    def save(self, edit_lora, filename_prefix):
        with libraries("Save Edit LoRA"):
            from ..core.edit_lora import save_edit_lora
        path = _free_name(host.folders("loras")[0], filename_prefix)
        save_edit_lora(edit_lora, path)
        return {"ui": {"text": [str(path)]}}


def _free_name(root: Path, prefix: str) -> Path:
    prefix = prefix.strip().replace("\\", "/").strip("/")
    target = (root / prefix).resolve()
    if not prefix or not target.is_relative_to(root.resolve()):
        raise EditError("Save Edit LoRA › filename_prefix", f"'{prefix}' is not a path inside models/loras.",
                        "Use a relative path such as 'edit_lora/recolour'.")
    counter = 1
    while (path := target.parent / f"{target.name}_{counter:05d}.safetensors").exists():
        counter += 1
    return path


class LoadEditLora:
    """Loads an edit LoRA saved by Save Edit LoRA."""

    DESCRIPTION = __doc__
    CATEGORY = "unpaired_edit/lora_of_change"
    FUNCTION = "load"
    RETURN_TYPES = (LORA_TYPE,)
    RETURN_NAMES = ("edit_lora",)
    OUTPUT_TOOLTIPS = ("The edit LoRA, for Apply Edit LoRA.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "lora_name": (host.list_files("loras"), {"tooltip": "A file in models/loras saved by Save Edit LoRA."}),
        }}

    @checked("Load Edit LoRA")
    def load(self, lora_name):
        with libraries("Load Edit LoRA"):
            from ..core.edit_lora import load_edit_lora
        where = "Load Edit LoRA › lora_name"
        return (load_edit_lora(host.find_file("loras", lora_name, where), where),)

