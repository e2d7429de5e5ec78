"""The shape of an API-format prompt: its links, node names and execution order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.errors import EditError


def is_link(value: Any) -> bool:
    """API inputs link as ``[source_node_id, output_slot]``; anything else is a literal."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def id_key(node_id: str) -> tuple[int, int | str]:
    """Sort numeric ids as numbers (2 before 10), others after them by name."""
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


def node_label(prompt: dict, node_id: str) -> str:
    return f"node {node_id} ({prompt[node_id].get('class_type')})"


def sources(node: dict) -> list[str]:
    """Ids of the nodes this node's inputs link to."""
    return [str(value[0]) for value in (node.get("inputs") or {}).values() if is_link(value)]


def execution_order(prompt: dict, outputs: Iterable[str], label: str) -> list[str]:
    """The nodes ``outputs`` need, each after the nodes it reads from.

    Links to nodes absent from the prompt are left for validation to report.
    """
    order: list[str] = []
    done: set[str] = set()
    path: list[str] = []  # the nodes being visited, to name a cycle

    def visit(node_id: str) -> None:
        if node_id in done:
            return
        if node_id in path:
            cycle = [node_id, *reversed(path[path.index(node_id):])]  # in the direction data flows
            raise EditError(
                label,
                "These nodes form a cycle: " + " → ".join(node_label(prompt, n) for n in cycle) + ".",
                "Remove one of these links; a workflow must not loop back on itself.",
            )
        path.append(node_id)
        for source in sorted(set(sources(prompt[node_id])), key=id_key):
            if source in prompt:
                visit(source)
        path.pop()
        done.add(node_id)
        order.append(node_id)

    for output in sorted(outputs, key=id_key):
        visit(output)
    return order
