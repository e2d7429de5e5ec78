"""Files are whole or refused: checks that run when one of our files loads.

A file with a missing or misshapen weight, a metadata field that is absent or of the wrong
type, settings from a newer version, or NaN weights would otherwise load and fail later, deep
inside torch, or quietly make every output NaN. Each check raises ``EditError`` with the node ›
input it was given.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from typing import TypeVar

import torch

from .errors import EditError, shown

Shape = tuple[int | None, ...]  # None: any size along that axis
T = TypeVar("T")

DAMAGED = "Re-export or re-download the file; it is incomplete or damaged."
DIVERGED = ("The weights are broken, as a diverged training run leaves them: use an earlier checkpoint, or "
            "retrain (e.g. with a lower learning rate).")
UPDATE = "Update Unpaired Edit (git pull in custom_nodes/unpaired-edit, or the ComfyUI Manager)."


def newer_version(name: str, detail: str) -> str:
    return f"'{name}' was made by a newer version of Unpaired Edit ({detail})."


def check_fields(data: Mapping, fields: Mapping[str, object], name: str, where: str, prefix: str = "",
                 optional: Collection[str] = (), exact: bool = False) -> dict:
    """``data``, a metadata mapping of file ``name``, after checking it holds each of ``fields``
    (key -> type hint) but the ``optional`` ones, each of its type; with ``exact``, keys it does
    not know mean a newer version wrote them. ``prefix`` places ``data`` in the file's metadata."""
    for key, hint in fields.items():
        if key not in data:
            if key in optional:
                continue
            raise EditError(where, f"'{name}' has no '{prefix}{key}' in its metadata.", DAMAGED)
        if not _fits(data[key], hint):
            raise EditError(where, f"'{name}' has {prefix}{key} = {shown(data[key])} in its metadata, where "
                                   f"{_hint_name(hint)} belongs.", DAMAGED)
    unknown = sorted(set(data) - set(fields))
    if exact and unknown:
        settings = ", ".join(prefix + key for key in unknown)
        raise EditError(where, newer_version(name, f"settings this version does not know: {settings}"),
                        f"{UPDATE} If you wrote these settings yourself, remove the unknown ones.")
    return dict(data)


def from_metadata(cls: type[T], data: Mapping, name: str, where: str, prefix: str = "") -> T:
    """Dataclass ``cls`` from a metadata mapping: every field without a default present, each
    of its annotated type, and no field ``cls`` lacks."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    defaults = [f.name for f in fields if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING]
    values = check_fields(data, {f.name: hints[f.name] for f in fields}, name, where, prefix, defaults, exact=True)
    return cls(**values)


def check_weights(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, Shape], name: str, where: str) -> None:
    """Refuse tensors other than exactly ``expected`` (name -> shape), or any that is not finite."""
    missing = [key for key in expected if key not in tensors]
    if missing:
        raise EditError(where, f"'{name}' lacks {_count(missing, 'weight')}, the first '{missing[0]}'.", DAMAGED)
    unexpected = [key for key in tensors if key not in expected]
    if unexpected:
        raise EditError(where, f"'{name}' has {_count(unexpected, 'weight')} its model has no place for, the first "
                               f"'{unexpected[0]}'.", DAMAGED)
    for key, shape in expected.items():
        have = tuple(tensors[key].shape)
        if len(have) != len(shape) or any(want not in (None, size) for want, size in zip(shape, have)):
            raise EditError(where, f"'{name}' has '{key}' of shape {list(have)}, where "
                                   f"[{', '.join('?' if s is None else str(s) for s in shape)}] belongs.", DAMAGED)
    check_finite(tensors, name, where)


def check_finite(tensors: Mapping[str, torch.Tensor], name: str, where: str) -> None:
    """Refuse NaN or infinite weights (every output would be NaN): one pass over the tensors."""
    bad = [key for key, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise EditError(where, f"'{name}' has NaN or infinite values in {_count(bad, 'weight tensor')}, the first "
                               f"'{bad[0]}'.", DIVERGED)


def shapes(state: Mapping[str, torch.Tensor]) -> dict[str, Shape]:
    """The shapes a module's state dict expects."""
    return {key: tuple(t.shape) for key, t in state.items()}


def _fits(value: object, hint: object) -> bool:
    """Whether a JSON value has the type ``hint`` (int, float, str, dict/list/tuple of those, unions)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in args)
    if hint is type(None):
        return value is None
    if isinstance(value, bool):  # JSON's true is no number
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    if origin is dict:
        return isinstance(value, dict) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if origin in (list, tuple):  # JSON has lists only
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value)
    return isinstance(value, hint)


def _hint_name(hint: object) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint)


def _count(items: Collection, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
