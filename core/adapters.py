"""LoRA adapters on a model's denoiser, saved with the fingerprint of the base they belong to."""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from .errors import EditError
from .model_files import FORMAT_VERSION, _read_tensors, atomic_save, check_made_for, read_kind
from .models import EditModel

LORA_FIELDS = ("r", "lora_alpha", "target_modules", "lora_dropout")


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
    """Load an adapter file onto ``model`` (refusing one made for another base) and activate it."""
    path = Path(path)
    meta = read_kind(path, "adapter", where, "an Unpaired Edit adapter",
                     "Pick a LoRA saved by this pack, or leave the adapter input at 'none'.")
    check_made_for(meta, model, where, f"'{path.name}' was trained on base",
                   "Load the adapter onto the base model it was trained on.")
    name = name or path.stem
    if name in getattr(model.denoiser, "peft_config", {}):
        model.denoiser.delete_adapters(name)
    model.denoiser.add_adapter(LoraConfig(**meta["lora"]), adapter_name=name)
    result = set_peft_model_state_dict(model.denoiser, _read_tensors(path, where), adapter_name=name)
    if getattr(result, "unexpected_keys", None):
        raise EditError(where, f"'{path.name}' has weights for layers this model lacks.", "Re-export the adapter.")
    model.denoiser.set_adapter(name)
    return name
