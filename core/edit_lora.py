"""An edit as a LoRA: one generated LoRA, the editor it belongs to, and its file format.

Files use the kohya key names ComfyUI's own LoRA loader reads for an SD1.x UNet (and so for an
InstructPix2Pix one): ``lora_unet_<diffusers name, dots as underscores>.lora_down.weight``
[r, in], ``.lora_up.weight`` [out, r] and ``.alpha`` = r, so the loader's ``alpha / r`` scale
is 1. The exact layer names and the editor's fingerprint travel in the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .containers import FORMAT_VERSION, atomic_save, check_made_for, read_kind, read_weights
from .errors import EditError
from .file_checks import DAMAGED, Shape
from .generated_lora import LoraDelta
from .models import EditModel

KIND = "edit_lora"
# Per layer: down [r, in], up [out, r], alpha (a scalar); the sizes are checked against the model.
PARTS: dict[str, Shape] = {"lora_down.weight": (None, None), "lora_up.weight": (None, None), "alpha": ()}


@dataclass
class EditLora:
    delta: LoraDelta  # a single LoRA (batch 1)
    family: str
    base_hash: str
    base_name: str = ""

    def check_fits(self, model: EditModel, where: str) -> None:
        """Refuse a model other than the one it was made for, or whose layers it does not fit."""
        check_made_for(vars(self), model, where, "This edit LoRA was made for",
                       "Use the edit model the LoC hypernetwork was trained for.")
        layers = dict(model.denoiser.named_modules())
        for name in self.delta.down:
            weight = getattr(layers.get(name), "weight", None)
            change = [self.delta.up[name].shape[1], self.delta.down[name].shape[2]]
            if weight is None or list(weight.shape) != change:
                has = "has no such layer" if weight is None else f"has it as {list(weight.shape)}"
                raise EditError(where, f"This edit LoRA changes layer '{name}' as {change}, but the model {has}.",
                                "The LoRA is damaged or was made for another model: make it again from the "
                                "pair with that model's hypernetwork.")


def _key(name: str) -> str:
    return "lora_unet_" + name.replace(".", "_")


def save_edit_lora(lora: EditLora, path: str | Path) -> Path:
    tensors = {}
    for name in lora.delta.down:
        down, up = lora.delta.down[name][0], lora.delta.up[name][0]
        tensors[f"{_key(name)}.lora_down.weight"] = down
        tensors[f"{_key(name)}.lora_up.weight"] = up
        tensors[f"{_key(name)}.alpha"] = torch.tensor(float(down.shape[0]))
    meta = {"format_version": FORMAT_VERSION, "kind": KIND, "family": lora.family, "base_hash": lora.base_hash,
            "base_name": lora.base_name, "layers": list(lora.delta.down)}
    return atomic_save(tensors, meta, path)


def load_edit_lora(path: str | Path, where: str = "Load Edit LoRA") -> EditLora:
    path = Path(path)
    meta = read_kind(path, KIND, where, "an edit LoRA made by this pack", "Pick a file written by Save Edit LoRA.",
                     {"layers": list[str]})
    if not meta["layers"]:
        raise EditError(where, f"'{path.name}' names no layers to change.", DAMAGED)
    tensors = read_weights(path, where, {f"{_key(name)}.{part}": shape for name in meta["layers"]
                                         for part, shape in PARTS.items()})
    down, up = {}, {}
    for name in meta["layers"]:
        d, u, alpha = (tensors[f"{_key(name)}.{part}"] for part in PARTS)
        if u.shape[1] != d.shape[0]:
            raise EditError(where, f"'{path.name}' has rank {d.shape[0]} down but {u.shape[1]} up for '{name}'.",
                            DAMAGED)
        down[name] = d[None]
        up[name] = (u * alpha / d.shape[0])[None]
    return EditLora(LoraDelta(down, up), meta["family"], meta["base_hash"], meta.get("base_name", ""))
