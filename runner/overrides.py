"""``NODE_ID.INPUT=VALUE`` overrides applied to an API-format prompt before it is checked."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.errors import EditError
from .graph import id_key
from .input_specs import input_specs

_FORMAT = "Write it as NODE_ID.INPUT=VALUE, e.g. 5.steps=20."


def parse_overrides(overrides: Mapping[str, Any] | Iterable[str]) -> list[tuple[str, Any]]:
    """``("NODE_ID.INPUT", value)`` pairs. Text values are read as JSON when they parse
    (``20``, ``true``, ``"20"``) and kept as text otherwise (``a cat``)."""
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    pairs = []
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep:
            raise EditError(f"override {text!r}", "It has no '='.", _FORMAT)
        pairs.append((key.strip(), _parse_value(raw)))
    return pairs


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(
    prompt: dict, overrides: Mapping[str, Any] | Iterable[str], classes: Mapping[str, type], label: str
) -> None:
    """Set each overridden input in ``prompt`` (in place), refusing unknown nodes and inputs."""
    for key, value in parse_overrides(overrides):
        where = f"{label} › override {key}"
        node_id, sep, name = key.partition(".")
        if not sep or not node_id or not name:
            raise EditError(where, "The key is not NODE_ID.INPUT.", _FORMAT)
        if node_id not in prompt:
            ids = ", ".join(sorted(prompt, key=id_key))
            raise EditError(where, f"There is no node {node_id} in the workflow.", f"Use one of: {ids}.")
        node = prompt[node_id]
        known = _input_names(node, classes)
        if known is not None and name not in known:
            raise EditError(
                where,
                f"Node {node_id} ({node['class_type']}) has no input '{name}'.",
                f"Use one of its inputs: {', '.join(known)}.",
            )
        node.setdefault("inputs", {})[name] = value


def _input_names(node: dict, classes: Mapping[str, type]) -> list[str] | None:
    """The inputs an override may set; None when the node's type is unknown (validation
    reports that with a better message)."""
    cls = classes.get(node.get("class_type"))
    if cls is None:
        return None
    names = list(input_specs(cls))
    return names + [name for name in node.get("inputs") or {} if name not in names]
