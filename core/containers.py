"""Our safetensors files as containers, whatever they hold: the JSON document in the header
(``{"format_version", "kind", ...}`` under ``unpaired_edit``), tensors that are whole or
refused, atomic writes, and the only classes a file or folder may ask to build. Nothing is
ever unpickled.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import EditError
from .file_checks import UPDATE, Shape, check_fields, check_weights, newer_version

if TYPE_CHECKING:
    from .models import EditModel

FORMAT_VERSION = 1
META_KEY = "unpaired_edit"
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pt2"}
# What the metadata of every file holds (key -> type; see file_checks.check_fields).
DOCUMENT = {"format_version": int, "kind": str}
MADE_FOR = {"family": str, "base_hash": str, "base_name": str}  # of adapters, edit LoRAs, hypernetworks


def read_metadata(path: str | Path, where: str) -> dict:
    """The ``unpaired_edit`` header document of a safetensors file ({} when absent)."""
    path = existing_file(path, where)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise EditError(where, f"'{path.name}' is a pickle-based checkpoint, which can run code when loaded.",
                        "Use a .safetensors file (convert it once with a trusted tool).")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise EditError(where, f"'{path.name}' is not a readable safetensors file ({err}).",
                        "Re-download or re-export the file; it may be truncated or damaged.") from None
    if META_KEY not in meta:
        return {}
    doc = json_object(meta[META_KEY])
    if doc is None:
        raise EditError(where, f"'{path.name}' has damaged Unpaired Edit metadata.", "Re-export the file.")
    check_fields(doc, DOCUMENT, path.name, where)
    if doc["format_version"] > FORMAT_VERSION:
        raise EditError(where, newer_version(path.name, f"file format {doc['format_version']}; this version reads "
                                                        f"up to {FORMAT_VERSION}"), UPDATE)
    return doc


def read_kind(path: str | Path, kind: str, where: str, what: str, fix: str, fields: dict[str, object]) -> dict:
    """The metadata of one of our files that must be of ``kind`` (``what`` names it for the
    message), made for a base model and holding ``fields`` (key -> type)."""
    meta = read_metadata(path, where)
    if meta.get("kind") != kind:
        raise EditError(where, f"'{Path(path).name}' is not {what}.", fix)
    return check_fields(meta, {**MADE_FOR, **fields}, Path(path).name, where, optional=["base_name"])


def read_weights(path: str | Path, where: str, expected: dict[str, Shape]) -> dict[str, torch.Tensor]:
    """The tensors of ``path``, which must be exactly ``expected`` (name -> shape) and finite."""
    path = Path(path)
    tensors = read_tensors(path, where)
    check_weights(tensors, expected, path.name, where)
    return tensors


def check_made_for(made_for: dict, model: EditModel, where: str, what: str, fix: str) -> None:
    """Refuse a model other than the base an adapter, edit LoRA or hypernetwork was made for
    (``made_for`` holds its family, base_hash and base_name; ``what`` begins the message)."""
    if made_for["family"] != model.family or made_for["base_hash"] != model.base_hash():
        raise EditError(where, f"{what} '{made_for.get('base_name') or '?'}' ({made_for['family']}, "
                               f"{made_for['base_hash']}), but the model is '{model.info.name or '?'}' "
                               f"({model.family}, {model.base_hash()}).", fix)


def atomic_save(tensors: dict[str, torch.Tensor], meta: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(contiguous, tmp, metadata={META_KEY: json.dumps(meta, default=_json_default)})
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a model file is not
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_object(text: str) -> dict | None:
    """``text`` parsed, if it is a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def existing_file(path: str | Path, where: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise EditError(where, f"'{path}' does not exist.", "Check the name, or refresh the node's file list.")
    return path


def read_tensors(path: Path, where: str) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise EditError(where, f"'{path.name}' could not be read ({err}).", "Re-download or re-export it.") from None


LIBRARIES = ("diffusers", "transformers")  # the only libraries whose classes a file or folder may name


def library_class(library: str, name: str) -> type:
    """The class ``name`` of ``library`` that a model file or a diffusers folder names: only a
    class of diffusers or transformers, never another module a file might ask to import."""
    if library not in LIBRARIES or not name.isidentifier():
        raise ValueError(f"only diffusers and transformers classes are loaded, not {library}.{name}")
    cls = getattr(importlib.import_module(library), name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{library} has no class {name} (a newer version may)")
    return cls


def _json_default(value):
    if isinstance(value, (torch.dtype, Path)):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Cannot store {type(value).__name__} in metadata.")
