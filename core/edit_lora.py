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

from .generated_lora import LoraDelta
from .model_files import FORMAT_VERSION, _read_tensors, atomic_save, check_made_for, read_kind
from .models import EditModel

KIND = "edit_lora"


@dataclass
class EditLora:
    delta: LoraDelta  # a single LoRA (batch 1)
    family: str
    base_hash: str
    base_name: str = ""

    def check_fits(self, model: EditModel, where: str) -> None:
        check_made_for(vars(self), model, where, "This edit LoRA was made for",
                       "Use the edit model the LoC hypernetwork was trained for.")


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
    meta = read_kind(path, KIND, where, "an edit LoRA made by this pack", "Pick a file written by Save Edit LoRA.")
    tensors = _read_tensors(path, where)
    down, up = {}, {}
    for name in meta["layers"]:
        scale = tensors[f"{_key(name)}.alpha"] / tensors[f"{_key(name)}.lora_down.weight"].shape[0]
        down[name] = tensors[f"{_key(name)}.lora_down.weight"][None]
        up[name] = (tensors[f"{_key(name)}.lora_up.weight"] * scale)[None]
    return EditLora(LoraDelta(down, up), meta["family"], meta["base_hash"], meta.get("base_name", ""))
