"""UI-format workflows (what the ComfyUI editor saves) to API format (what /prompt runs).

ComfyUI's backend never does this conversion; its frontend does, in JavaScript. This module
follows the frontend's rules, reading each node's widgets from its own ``INPUT_TYPES()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import EditError
from .input_specs import InputSpec, input_specs, widget_slots
from .registry import pack_node_classes, with_io_nodes
from .structure import check_api_nodes, check_ui_nodes, read_links, shown

MUTED, BYPASSED = 2, 4
DROPPED_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
_MISSING = object()  # no value: a link to nowhere (a muted source), or a widget saved before it existed


def is_api_format(data: Any) -> bool:
    """True for ``{"<id>": {"class_type": ..., "inputs": {...}}, ...}``: some node names its
    class_type (`check_api_nodes` then names any node that does not)."""
    return (
        isinstance(data, dict)
        and "nodes" not in data
        and any(isinstance(node, dict) and "class_type" in node for node in data.values())
    )


def load_workflow(path: str | Path, node_classes: Mapping[str, type] | None = None) -> dict:
    """Read a workflow file in either format and return it in API format.

    UI files are converted with ``node_classes`` (default: the pack's nodes), plus the
    runner's image I/O nodes.
    """
    path = Path(path)
    label = f"workflow {path.name}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditError(label, f"The file {path} does not exist.", "Check the path.") from None
    except IsADirectoryError:
        raise EditError(label, f"It is a folder, not a workflow file: {path}.", "Give a .json file's path.") from None
    except OSError as err:
        raise EditError(label, f"The file {path} cannot be read ({err.strerror}).", "Check the path.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise EditError(label, f"The file is not valid JSON ({err}).", "Save it again from ComfyUI.") from None
    return as_api(data, node_classes, label=label)


def as_api(data: Any, node_classes: Mapping[str, type] | None, *, label: str) -> dict:
    """``data`` in API format, converting a UI workflow; accepts a /prompt body too."""
    if isinstance(data, dict) and is_api_format(data.get("prompt")):
        data = data["prompt"]
    if is_api_format(data):
        check_api_nodes(data, label)
        return {str(node_id): node for node_id, node in data.items()}
    if isinstance(data, dict) and "nodes" in data:
        classes = with_io_nodes(pack_node_classes() if node_classes is None else node_classes)
        return ui_to_api(data, classes, label=label)
    raise EditError(
        label,
        "This is neither a ComfyUI workflow (with nodes and links) nor an API-format prompt.",
        "Save the workflow from ComfyUI with Save or Export (API).",
    )


def ui_to_api(ui: dict, node_classes: Mapping[str, type], *, label: str = "workflow") -> dict:
    """Convert a UI-format workflow to API format.

    Nodes whose class is not in ``node_classes`` keep their links but get no widget values;
    running the result then reports the unknown type.
    """
    check_ui_nodes(ui, label)
    _refuse_subgraphs(ui, label)
    graph = _UIGraph(ui, read_links(ui, label), label)
    prompt: dict[str, dict] = {}
    for node in ui["nodes"]:
        if node.get("type") in DROPPED_TYPES or node.get("mode") in (MUTED, BYPASSED):
            continue
        cls = node_classes.get(node.get("type"))
        prompt[str(node["id"])] = {
            "class_type": node.get("type"),
            "inputs": graph.inputs_of(node, input_specs(cls) if cls else {}),
            "_meta": {"title": node.get("title") or node.get("type")},
        }
    return prompt


def _refuse_subgraphs(ui: dict, label: str) -> None:
    subgraphs = (ui.get("definitions") or {}).get("subgraphs") or []
    if subgraphs:
        names = ", ".join(shown(sub.get("name", sub.get("id")) if isinstance(sub, dict) else sub)
                          for sub in subgraphs[:3])
        raise EditError(
            label,
            f"The workflow uses subgraphs ({names}), which the headless runner cannot expand.",
            "Open it in the ComfyUI frontend, use Export (API), and run the exported file.",
        )


def _widget_values(node: dict, specs: dict[str, InputSpec]) -> dict[str, Any]:
    """Input name -> value saved in the node's widgets; defaults for widgets added since."""
    saved = node.get("widgets_values")
    if isinstance(saved, dict):
        pairs = [(name, saved.get(name, _MISSING)) for name, spec in specs.items() if spec.is_widget]
    else:
        saved = saved or []
        pairs = [
            (name, saved[i] if i < len(saved) else _MISSING)
            for i, name in enumerate(widget_slots(specs))
            if name is not None
        ]
    values = {}
    for name, value in pairs:
        value = specs[name].default if value is _MISSING else value
        if value is not None:
            values[name] = value
    return values


class _UIGraph:
    """The UI graph's nodes and links, to trace an input back to what really feeds it."""

    def __init__(self, ui: dict, links: dict[int, tuple[str, int]], label: str) -> None:
        self.label = label
        self.nodes = {str(node["id"]): node for node in ui["nodes"]}
        self.links = links

    def inputs_of(self, node: dict, specs: dict[str, InputSpec]) -> dict[str, Any]:
        inputs = _widget_values(node, specs)
        for slot in node.get("inputs") or []:
            if slot.get("link") is None:
                continue
            # A linked widget keeps its saved value in widgets_values; the link wins.
            inputs.pop(slot["name"], None)
            source = self._resolve(slot["link"], frozenset())
            if source is not _MISSING:
                inputs[slot["name"]] = source
        return inputs

    def _resolve(self, link_id: Any, seen: frozenset[str]) -> Any:
        """A link -> ``[node_id, slot]``, a literal (PrimitiveNode) or _MISSING."""
        if link_id not in self.links:
            return _MISSING
        origin, slot = self.links[link_id]
        node = self.nodes.get(origin)
        if node is None:
            return [origin, slot]  # a dangling link: validation names it
        if origin in seen:
            raise EditError(self.label, f"Links loop through node {origin}.", "Remove the loop in ComfyUI.")
        if node.get("type") == "PrimitiveNode":
            saved = node.get("widgets_values") or []
            return saved[0] if saved else _MISSING
        if node.get("mode") == MUTED:
            return _MISSING
        if node.get("type") == "Reroute":
            through = (node.get("inputs") or [{}])[0].get("link")
        elif node.get("mode") == BYPASSED:
            through = _bypass_link(node, slot)
        else:
            return [origin, slot]
        return _MISSING if through is None else self._resolve(through, seen | {origin})


def _bypass_link(node: dict, slot: int) -> Any:
    """The link a bypassed node passes through to its output ``slot``: from the input of the
    output's type at the same index if there is one, else the first input of that type."""
    outputs, inputs = node.get("outputs") or [], node.get("inputs") or []
    wanted = outputs[slot].get("type") if slot < len(outputs) else None
    same_index = [inputs[slot]] if slot < len(inputs) else []
    for candidate in same_index + inputs:
        if candidate.get("type") == wanted:
            return candidate.get("link")
    return None
