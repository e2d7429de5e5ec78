"""Loading and saving edit models.

A model file is one of our containers (``core/containers.py``) of kind "model": every
component (keys prefixed ``<component>.``) plus the configs, tokenizers and scheduler needed to
rebuild it offline, and its ModelInfo. Diffusers folders and original-layout InstructPix2Pix
checkpoints load too. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .containers import (FORMAT_VERSION, atomic_save, existing_file, json_object, library_class, read_metadata,
                         read_tensors, read_weights)
from .errors import EditError
from .file_checks import DAMAGED, check_fields, check_finite, from_metadata, shapes
from .models import FAMILIES, EditModel, ModelInfo

FOLDER_INFO = "unpaired_edit.json"  # optional ModelInfo beside model_index.json
CLIP_PREPROCESSOR = "preprocessor_config.json"  # a CLIP folder's image mean and std
# What the metadata of each kind of file holds (key -> type; see file_checks.check_fields).
MODEL = {"info": dict, "modules": dict[str, dict], "tokenizers": dict[str, dict], "scheduler": dict}
MODULE = {"class": str, "config": dict, "aliases": dict[str, str]}
TOKENIZER = {"json": str, "options": dict}


# -- reading ------------------------------------------------------------------------------

def clip_preprocessing(folder: str | Path, where: str) -> dict:
    """The image preprocessing saved beside a CLIP model folder ({} when none), after checking
    the folder holds a model."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise EditError(where, f"{folder} is not a CLIP model folder (no config.json).",
                        "Point it at a CLIPModel or CLIPVisionModel folder saved by save_pretrained "
                        "(for the toy world, the clip trainer writes one).")
    pre = folder / CLIP_PREPROCESSOR
    return json.loads(pre.read_text()) if pre.is_file() else {}


def load_model(path: str | Path, where: str = "Load Edit Model", clip_tokenizer: Path | None = None) -> EditModel:
    """Load a diffusers folder, one of our single-file models, or an original-layout checkpoint a
    family reads (which needs ``clip_tokenizer``, a CLIP tokenizer folder), onto the CPU in float32."""
    path = existing_file(path, where)
    if path.is_dir():
        return _load_diffusers_folder(path, where)
    meta = read_metadata(path, where)
    if not meta:
        return _load_original_layout(path, where, clip_tokenizer)
    if meta.get("kind") != "model":
        raise EditError(where, f"'{path.name}' is an {meta.get('kind', 'unknown')} file, not a model.",
                        "Load it through the `adapter` input instead.")
    return _load_single_file(path, meta, where)


def _load_single_file(path: Path, meta: dict, where: str) -> EditModel:
    check_fields(meta, MODEL, path.name, where, optional=["scheduler"])
    info = from_metadata(ModelInfo, meta["info"], path.name, where, "info.")
    specs = {name: check_fields(spec, MODULE, path.name, where, f"modules.{name}.", optional=["aliases"])
             for name, spec in meta["modules"].items()}
    modules = {name: _build_part(path, where, name, _build, spec["class"], spec["config"])
               for name, spec in specs.items()}
    expected = {f"{name}.{k}": shape for name, module in modules.items()
                for k, shape in shapes(module.state_dict()).items() if k not in specs[name].get("aliases", {})}
    tensors = read_weights(path, where, expected)
    parts: dict[str, object] = {}
    for name, module in modules.items():
        state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        for alias, kept in specs[name].get("aliases", {}).items():
            state[alias] = state[kept]
        module.load_state_dict(state, strict=True)
        parts[name] = module.eval()
    for name, spec in meta["tokenizers"].items():
        spec = check_fields(spec, TOKENIZER, path.name, where, f"tokenizers.{name}.")
        parts[name] = _build_part(path, where, name, _tokenizer, spec["json"], spec["options"])
    if "scheduler" in meta:
        spec = check_fields(meta["scheduler"], {"class": str, "config": dict}, path.name, where, "scheduler.")
        parts["scheduler"] = _build_part(path, where, "scheduler", _build, spec["class"], spec["config"])
    return _wrap(info, parts, where)


def _build_part(path: Path, where: str, name: str, build, *args):
    """``build(*args)`` for part ``name`` of a file; the libraries raise many kinds of error for a
    config they cannot use, each reported as a damaged file."""
    try:
        return build(*args)
    except Exception as err:  # tokenizers raises a plain Exception
        raise EditError(where, f"'{path.name}' describes a '{name}' that cannot be built ({str(err)[:200]}).",
                        DAMAGED) from None


def _tokenizer(json_text: str, options: dict) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json_text), **options)


def _load_original_layout(path: Path, where: str, clip_tokenizer: Path | None) -> EditModel:
    with safe_open(str(path), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    family = next((cls for cls in FAMILIES.values() if cls.reads_original_layout(shapes)), None)
    if family is None:
        layouts = "; ".join(cls.original_layout for cls in FAMILIES.values() if cls.original_layout)
        raise EditError(where, f"'{path.name}' is neither an Unpaired Edit model nor an original-layout "
                        f"checkpoint the pack reads ({layouts}).",
                        "Pick an edit model, or put the model as a diffusers folder in models/diffusers.")
    if clip_tokenizer is None or not Path(clip_tokenizer).is_dir():
        raise EditError(where, f"'{path.name}' carries no tokenizer, and no CLIP tokenizer folder was found.",
                        "Load it inside ComfyUI (which ships CLIP's tokenizer), or use its diffusers folder.")
    tokenizer = AutoTokenizer.from_pretrained(str(clip_tokenizer), local_files_only=True)
    tensors = read_tensors(path, where)
    check_finite(tensors, path.name, where)
    try:
        return family.from_original_layout(tensors, tokenizer, path.stem)
    except (RuntimeError, ValueError, KeyError, StopIteration, IndexError) as err:
        raise EditError(where, f"'{path.name}' looks like an {family.original_layout} checkpoint but could not "
                        f"be converted ({str(err)[:200]}).", "Use the model's diffusers folder instead.") from None


def _load_diffusers_folder(folder: Path, where: str) -> EditModel:
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise EditError(where, f"'{folder.name}' has no model_index.json, so it is not a diffusers pipeline folder.",
                        "Point at the folder that contains model_index.json.")
    index = json_object(index_file.read_text(errors="replace"))
    if index is None:
        raise EditError(where, f"'{folder.name}/model_index.json' is not a JSON object.",
                        "Re-download the folder, or restore model_index.json.")
    pipeline = index.get("_class_name") if isinstance(index.get("_class_name"), str) else ""
    pipelines = {name: (family, extra) for family, cls in FAMILIES.items() for name, extra in cls.pipelines.items()}
    if pipeline not in pipelines:
        held = f"a {pipeline} pipeline" if pipeline else "an unknown pipeline"
        raise EditError(where, f"'{folder.name}' holds {held}, which is not an edit model this pack runs.",
                        f"Use one of: {', '.join(pipelines)}.")
    family, extra = pipelines[pipeline]
    info = _folder_info(folder, where)
    parts = {}
    for name in FAMILIES[family].COMPONENTS:
        entry = index.get(name)
        try:
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
                raise ValueError(f"model_index.json has no [library, class] for it, but {json.dumps(entry)[:60]}")
            cls = library_class(*entry)
            # never unpickle: weights come from .safetensors files only
            weights_only = {"use_safetensors": True} if issubclass(cls, torch.nn.Module) else {}
            parts[name] = cls.from_pretrained(folder / name, local_files_only=True, **weights_only)
        except (OSError, ValueError, SafetensorError) as err:
            raise EditError(where, f"Could not load '{name}' from '{folder.name}' ({str(err)[:200]}).",
                            "Check the folder is complete (weights and configs of every component).") from None
        if isinstance(parts[name], torch.nn.Module):
            check_finite(parts[name].state_dict(), f"{folder.name}/{name}", where)
    if info is None:
        defaults = FAMILIES[family].default_info()
        info = replace(defaults, name=folder.name, extra={**defaults.extra, **extra})
    return _wrap(info, parts, where)


def _folder_info(folder: Path, where: str) -> ModelInfo | None:
    """The ModelInfo in a diffusers folder's unpaired_edit.json, if it has one."""
    info_file = folder / FOLDER_INFO
    if not info_file.is_file():
        return None
    data = json_object(info_file.read_text())
    name = f"{folder.name}/{FOLDER_INFO}"
    if data is None:
        raise EditError(where, f"'{name}' is not a JSON object.", f"Fix or delete {FOLDER_INFO}.")
    return from_metadata(ModelInfo, data, name, where)


def _wrap(info: ModelInfo, parts: dict, where: str) -> EditModel:
    family = FAMILIES.get(info.family)
    if family is None:
        raise EditError(where, f"This model's family '{info.family}' is unknown to this version.", "Update Unpaired Edit.")
    missing = [name for name in family.COMPONENTS if name not in parts]
    if missing:
        raise EditError(where, f"This {info.family} model lacks its '{missing[0]}'.", DAMAGED)
    try:
        return family(**{name: parts[name] for name in family.COMPONENTS}, info=info)
    except ValueError as err:
        raise EditError(where, str(err), "The file does not describe a valid model of its family; re-export it.") from None


# -- writing ------------------------------------------------------------------------------

def save_model(model: EditModel, path: str | Path) -> Path:
    """Write ``model`` as one safetensors file (atomically: a crash never leaves half a file)."""
    tensors: dict[str, torch.Tensor] = {}
    modules = {}
    for name, module in model.modules().items():
        state, aliases = _dedupe(module.state_dict())
        tensors.update({f"{name}.{k}": v for k, v in state.items()})
        modules[name] = {"class": _class_path(module), "config": _config(module), "aliases": aliases}
    tokenizers = {name: {"json": tok.backend_tokenizer.to_str(), "options": _tokenizer_options(tok)}
                  for name, tok in model.components().items() if name.startswith("tokenizer")}
    info = replace(model.info, base_hash=model.info.base_hash or model.base_hash())
    meta = {"format_version": FORMAT_VERSION, "kind": "model", "info": info.to_dict(), "modules": modules,
            "tokenizers": tokenizers}
    if "scheduler" in model.COMPONENTS:
        meta["scheduler"] = {"class": _class_path(model.scheduler), "config": dict(model.scheduler.config)}
    return atomic_save(tensors, meta, path)


# -- helpers ------------------------------------------------------------------------------

def _dedupe(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses shared storage (tied embeddings): keep one name, record the rest."""
    kept, aliases, seen = {}, {}, {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            kept[name] = tensor
    return kept, aliases


def _class_path(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def _build(class_path: str, config: dict):
    library, _, name = class_path.partition(".")
    cls = library_class(library, name)
    if library == "transformers":
        config_cls = cls.config_class
        return cls(config_cls.from_dict(config))
    return cls.from_config(config)


def _config(module) -> dict:
    config = module.config
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if "_use_default_values" in config:  # diffusers fills it from a set: sorted, equal weights give equal bytes
        config["_use_default_values"] = sorted(config["_use_default_values"])
    return config


def _tokenizer_options(tok) -> dict:
    options = {k: getattr(tok, k) for k in ("bos_token", "eos_token", "pad_token", "unk_token") if getattr(tok, k, None)}
    options["model_max_length"] = int(tok.model_max_length)
    return options


