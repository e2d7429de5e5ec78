"""The shape of a workflow file, checked before it is converted or validated.

A file from an old frontend, another tool or a hand edit can hold anything. Every field the
runner reads is checked here to have the type it needs, so a broken file gets a message that
names the field, not a traceback from deep inside the conversion.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import EditError, shown

_RESAVE = "Open the workflow in ComfyUI and save it again, or correct this field in the file."
_REEXPORT = "Export the workflow from ComfyUI again with Export (API), or correct this node in the file."
_LINK_LAYOUT = "[link id, origin node id, origin slot, target node id, target slot, type]"
_KINDS = ((bool, "true/false"), ((int, float), "a number"), (str, "text"), ((list, tuple), "a list"),
          (dict, "an object"))


def kind_of(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    return next((name for types, name in _KINDS if isinstance(value, types)), "a value")


def is_node_id(value: Any) -> bool:
    """Node ids are numbers (text in some newer files)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def is_slot(value: Any) -> bool:
    """A link id or an output slot: a whole number from 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_ui_nodes(ui: dict, label: str) -> None:
    """Check a UI workflow's ``nodes`` (and ``definitions``): each a node object with a unique
    id, a type name and the fields the conversion reads, of the right kinds."""
    nodes = ui.get("nodes")
    if not isinstance(nodes, list):
        raise EditError(f"{label} › nodes", f"'nodes' is {kind_of(nodes)}, not a list of nodes.", _RESAVE)
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        where = _check_node(node, index, label)
        if str(node["id"]) in seen:
            raise EditError(where, f"Two nodes have the id {node['id']}.",
                            "Give each node its own id: delete one of them in ComfyUI and add it again.")
        seen.add(str(node["id"]))
    definitions = ui.get("definitions")
    if definitions is not None and not (
        isinstance(definitions, dict) and isinstance(definitions.get("subgraphs") or [], list)
    ):
        raise EditError(f"{label} › definitions", "'definitions' is not an object with a list of subgraphs.", _RESAVE)


def read_links(ui: dict, label: str) -> dict[int, tuple[str, int]]:
    """A UI workflow's links: link id -> (origin node id, origin slot). Entries are arrays
    (LiteGraph) or objects (newer files); two different links may not share an id."""
    links = ui.get("links")
    if links is not None and not isinstance(links, list):
        raise EditError(f"{label} › links", f"'links' is {kind_of(links)}, not a list of links.", _RESAVE)
    read: dict[int, tuple[str, int]] = {}
    for index, entry in enumerate(links or []):
        link_id, origin = _read_link(entry, f"{label} › links[{index}]")
        if read.setdefault(link_id, origin) != origin:
            raise EditError(f"{label} › links[{index}]", f"Two different links have the id {link_id}.", _RESAVE)
    return read


def check_api_nodes(prompt: dict, label: str) -> None:
    """Check an API-format prompt: each node an object with a class_type name and an
    ``inputs`` object (the input values themselves are validation's business)."""
    for node_id, node in prompt.items():
        where = f"{label} › node {node_id}"
        if not isinstance(node, dict):
            raise EditError(where, f"The node is {kind_of(node)}, not an object with class_type and inputs.",
                            _REEXPORT)
        class_type = node.get("class_type")
        if not isinstance(class_type, str):
            problem = "The node has no class_type." if class_type is None else (
                f"Its class_type is {kind_of(class_type)}, not a node type name.")
            raise EditError(where, problem, _REEXPORT)
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise EditError(f"{where} ({class_type}) › inputs",
                            f"'inputs' is {kind_of(inputs)}, not an object of input names and values.", _REEXPORT)


def _check_node(node: Any, index: int, label: str) -> str:
    """Check one UI node; return how messages name it."""
    if not isinstance(node, dict):
        raise EditError(f"{label} › nodes[{index}]", f"The entry is {kind_of(node)} ({shown(node)}), not a node.",
                        _RESAVE)
    kind = node.get("type")
    if not is_node_id(node.get("id")):
        named = f" ({kind})" if isinstance(kind, str) else ""
        problem = "The node has no id." if "id" not in node else f"Its id {shown(node['id'])} is not a node id."
        raise EditError(f"{label} › nodes[{index}]{named}", problem, _RESAVE)
    if not isinstance(kind, str):
        raise EditError(f"{label} › node {node['id']}", f"Its 'type' is {kind_of(kind)}, not a node type name.",
                        _RESAVE)
    where = f"{label} › node {node['id']} ({kind})"
    _check_fields(node, where)
    _check_slots(node, where)
    return where


# The node fields the conversion reads, and what each must be when present.
_NODE_FIELDS = {
    "mode": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a number"),
    "inputs": (lambda v: isinstance(v, list), "a list of input slots"),
    "outputs": (lambda v: isinstance(v, list), "a list of output slots"),
    "widgets_values": (lambda v: isinstance(v, (list, dict)), "a list of widget values"),
}


def _check_fields(node: dict, where: str) -> None:
    for name, (accepts, wanted) in _NODE_FIELDS.items():
        value = node.get(name)
        if value is not None and not accepts(value):
            raise EditError(f"{where} › {name}", f"'{name}' is {kind_of(value)}, not {wanted}.", _RESAVE)
    if node["type"] == "PrimitiveNode" and isinstance(node.get("widgets_values"), dict):
        raise EditError(f"{where} › widgets_values", "A primitive's widgets_values must be a list (its value first).",
                        _RESAVE)


def _check_slots(node: dict, where: str) -> None:
    for index, slot in enumerate(node.get("inputs") or []):
        if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
            raise EditError(f"{where} › inputs[{index}]",
                            f"The input slot {shown(slot)} is not an object with a 'name'.", _RESAVE)
        link = slot.get("link")
        if link is not None and not is_slot(link):
            raise EditError(f"{where} › {slot['name']}", f"Its link {shown(link)} is not a link id (a whole number).",
                            _RESAVE)
    for index, slot in enumerate(node.get("outputs") or []):
        if not isinstance(slot, dict):
            raise EditError(f"{where} › outputs[{index}]", f"The output slot {shown(slot)} is not an object.",
                            _RESAVE)


def _read_link(entry: Any, where: str) -> tuple[int, tuple[str, int]]:
    if isinstance(entry, dict):
        fields = [entry.get("id"), entry.get("origin_id"), entry.get("origin_slot")]
    elif isinstance(entry, list) and len(entry) >= 3:
        fields = entry[:3]
    else:
        raise EditError(where, f"The link {shown(entry)} is not a link {_LINK_LAYOUT}.", _RESAVE)
    link_id, origin, slot = fields
    if not (is_slot(link_id) and is_node_id(origin) and is_slot(slot)):
        raise EditError(
            where,
            f"The link {shown(entry)} needs a link id, the id of the node it comes from and that node's "
            "output slot (whole numbers from 0).",
            _RESAVE,
        )
    return link_id, (str(origin), slot)
