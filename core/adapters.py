"""LoRA adapters on a model's denoiser, saved with the fingerprint of the base they belong to."""

from __future__ import annotations

import re
from pathlib import Path

from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from .containers import FORMAT_VERSION, atomic_save, check_made_for, read_kind, read_weights
from .errors import EditError
from .file_checks import check_fields, shapes
from .models import EditModel

# The LoraConfig fields an adapter file carries, with their types.
LORA_FIELDS = {"r": int, "lora_alpha": float, "target_modules": list[str] | str, "lora_dropout": float}


def add_lora(model: EditModel, name: str, rank: int, target_modules: list[str], alpha: float | None = None) -> None:
    """Add a fresh (zero-effect) LoRA adapter called ``name`` to the denoiser."""
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=target_modules, init_lora_weights=True)
    model.denoiser.add_adapter(config, adapter_name=name)


def save_adapter(model: EditModel, name: str, path: str | Path, method: str = "") -> Path:
    config = model.denoiser.peft_config[name]
    lora = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.to_dict().items() if k in LORA_FIELDS}
    meta = {"format_version": FORMAT_VERSION, "kind": "adapter", "family": model.family, "method": method,
            "base_hash": model.base_hash(), "base_name": model.info.name, "lora": lora}
    return atomic_save(get_peft_model_state_dict(model.denoiser, adapter_name=name), meta, path)


def load_adapter(model: EditModel, path: str | Path, name: str | None = None,
                 where: str = "Load Edit Model › adapter") -> str:
    """Load an adapter file onto ``model`` (refusing one made for another base, or a broken
    file) and activate it under ``name`` (by default one made from the file's name)."""
    path = Path(path)
    meta = read_kind(path, "adapter", where, "an Unpaired Edit adapter",
                     "Pick a LoRA saved by this pack, or leave the adapter input at 'none'.", {"lora": dict})
    lora = check_fields(meta["lora"], LORA_FIELDS, path.name, where, "lora.", exact=True)
    check_made_for(meta, model, where, f"'{path.name}' was trained on base",
                   "Load the adapter onto the base model it was trained on.")
    # peft keeps adapters in ModuleDicts: no dots, and no shadowing of an attribute such as 'half'
    name = name or "adapter_" + re.sub(r"\W", "_", path.stem)
    if name in getattr(model.denoiser, "peft_config", {}):
        model.denoiser.delete_adapters(name)
    try:
        model.denoiser.add_adapter(LoraConfig(**lora), adapter_name=name)
    except ValueError as err:  # no layer matches, or a rank of 0
        raise EditError(where, f"'{path.name}' does not fit this model ({str(err)[:200]}).",
                        "Load the adapter onto the base model it was trained on, or re-export it.") from None
    try:  # the fresh adapter's own state dict says which weights, of which shapes, the file must hold
        tensors = read_weights(path, where, shapes(get_peft_model_state_dict(model.denoiser, adapter_name=name)))
    except EditError:
        model.denoiser.delete_adapters(name)
        raise
    set_peft_model_state_dict(model.denoiser, tensors, adapter_name=name)
    model.denoiser.set_adapter(name)
    return name
