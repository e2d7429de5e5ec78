"""Which node classes a headless run knows: the pack's, plus the runner's image I/O nodes."""

from __future__ import annotations

from collections.abc import Mapping

from .image_nodes import IO_NODE_CLASSES


def pack_node_classes() -> dict[str, type]:
    """The pack's own nodes, imported on demand so the runner loads without them."""
    from ..nodes import NODE_CLASS_MAPPINGS

    return dict(NODE_CLASS_MAPPINGS)


def with_io_nodes(node_classes: Mapping[str, type]) -> dict[str, type]:
    """``node_classes`` plus the runner's image I/O nodes (a given class of the same
    name wins, so a caller can swap one)."""
    return {**IO_NODE_CLASSES, **node_classes}
