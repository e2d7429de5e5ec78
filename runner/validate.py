"""Checks an API-format prompt before anything runs, as ComfyUI's /prompt does."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Mapping
from typing import Any

from ..core.errors import EditError
from .context import current_context
from .graph import execution_order, id_key, is_link, node_label
from .input_specs import InputSpec, input_specs, type_name, types_compatible
from .structure import is_node_id, shown

_SHOWN_CHOICES = 10
_LITERAL_CHECKS = {
    "INT": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "FLOAT": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "BOOLEAN": ("true or false", lambda v: isinstance(v, bool)),
    "STRING": ("text", lambda v: isinstance(v, str)),
}


def validate_prompt(prompt: dict, classes: Mapping[str, type], label: str) -> list[str]:
    """Check every node the outputs need; return their ids in execution order.

    Like ComfyUI, every node's type must be known, but only nodes that feed an output
    node have their inputs checked (and run).
    """
    _check_class_types(prompt, classes, label)
    outputs = [nid for nid, node in prompt.items() if getattr(classes[node["class_type"]], "OUTPUT_NODE", False)]
    if not outputs:
        raise EditError(
            label,
            "The workflow has no output node, so nothing would run.",
            "Add an output node such as SaveImage or PreviewImage and connect it.",
        )
    order = execution_order(prompt, outputs, label)
    for node_id in order:
        _check_node(prompt, node_id, classes, label)
    return order


def _check_class_types(prompt: dict, classes: Mapping[str, type], label: str) -> None:
    for node_id in sorted(prompt, key=id_key):
        class_type = prompt[node_id].get("class_type")
        if class_type in classes:
            continue
        known = difflib.get_close_matches(str(class_type), list(classes), n=3) or sorted(classes)[:6]
        raise EditError(
            f"{label} › {node_label(prompt, node_id)}",
            f"Unknown node type '{class_type}': its pack, or this node, may be missing or renamed.",
            f"Install or update that pack, or replace the node. Known types include: {', '.join(known)}.",
        )


def _check_node(prompt: dict, node_id: str, classes: Mapping[str, type], label: str) -> None:
    where = f"{label} › {node_label(prompt, node_id)}"
    cls = classes[prompt[node_id]["class_type"]]
    if getattr(cls, "INPUT_IS_LIST", False) or any(getattr(cls, "OUTPUT_IS_LIST", ())):
        raise EditError(
            where,
            "The node uses list inputs or outputs, which the headless runner does not support.",
            "Run this workflow in ComfyUI.",
        )
    inputs = prompt[node_id].get("inputs") or {}
    specs = input_specs(cls)
    named, takes_any = _validator_signature(cls)
    for name, spec in specs.items():
        if name not in inputs:
            if spec.required:
                raise EditError(
                    f"{where} › {name}",
                    f"The required input '{name}' ({spec.type}) is missing.",
                    "Connect it, or give it a value.",
                )
        elif is_link(inputs[name]):
            # A VALIDATE_INPUTS that takes input_types checks link types itself.
            _check_link(prompt, classes, inputs[name], spec, f"{where} › {name}", "input_types" not in named)
        elif isinstance(inputs[name], list):  # like ComfyUI, any list is a link
            _refuse_bad_link(inputs[name], f"{where} › {name}")
        elif name not in named:  # ComfyUI leaves the inputs VALIDATE_INPUTS names to it
            _check_literal(inputs[name], spec, f"{where} › {name}")
    if hasattr(cls, "VALIDATE_INPUTS"):
        # Like ComfyUI: literal inputs only, since linked values do not exist yet.
        args = {
            name: specs[name].coerce(value)
            for name, value in inputs.items()
            if name in specs and not is_link(value) and (takes_any or name in named)
        }
        if "input_types" in named:
            args["input_types"] = {
                name: _output_type(prompt, classes, value)
                for name, value in inputs.items()
                if name in specs and is_link(value)
            }
        verdict = cls.VALIDATE_INPUTS(**args)
        if verdict is not True:
            ours = EditError.parse(str(verdict))  # a pack node's error keeps its input and fix, as at run time
            if ours:
                raise EditError(f"{label} › node {node_id} › {ours.where}", ours.problem, ours.fix)
            raise EditError(where, f"The node rejected its inputs: {verdict}", "Change the inputs it names.")


def _validator_signature(cls: type) -> tuple[set[str], bool]:
    """The names VALIDATE_INPUTS takes, and whether it also takes **kwargs."""
    if not hasattr(cls, "VALIDATE_INPUTS"):
        return set(), False
    params = inspect.signature(cls.VALIDATE_INPUTS).parameters.values()
    var_keyword = inspect.Parameter.VAR_KEYWORD
    return {p.name for p in params if p.kind is not var_keyword}, any(p.kind is var_keyword for p in params)


def _check_link(
    prompt: dict, classes: Mapping[str, type], link: list, spec: InputSpec, where: str, check_type: bool
) -> None:
    source, slot = str(link[0]), link[1]
    if source not in prompt:
        raise EditError(
            where,
            f"The input is linked to node {source}, which is not in the workflow.",
            "Reconnect it to an existing node.",
        )
    returns = tuple(classes[prompt[source]["class_type"]].RETURN_TYPES)
    if not 0 <= slot < len(returns):
        raise EditError(
            where,
            f"The input is linked to output {slot} of {node_label(prompt, source)}, which has {len(returns)}.",
            "Reconnect it to one of that node's outputs.",
        )
    output_type = _output_type(prompt, classes, link)
    if check_type and spec.type != "COMBO" and not types_compatible(output_type, spec.type):
        raise EditError(
            where,
            f"The input expects {spec.type} but is linked to output {slot} ({output_type}) "
            f"of {node_label(prompt, source)}.",
            f"Connect an output of type {spec.type}.",
        )


def _refuse_bad_link(value: list, where: str) -> None:
    if len(value) != 2:
        problem = f"has {len(value)} item{'' if len(value) == 1 else 's'}, not 2"
    elif not is_node_id(value[0]):
        problem = f"starts with {shown(value[0])}, which is not a node id"
    else:
        problem = f"has the output slot {shown(value[1])}, which is not a whole number"
    raise EditError(
        where,
        f"The value {shown(value)} is a list, which a workflow uses only for links [node id, output slot], "
        f"but it {problem}.",
        'Reconnect the input in ComfyUI, or write the link as ["NODE_ID", SLOT], e.g. ["4", 0].',
    )


def _check_literal(value: Any, spec: InputSpec, where: str) -> None:
    if spec.type == "COMBO":
        if value not in spec.choices:
            raise EditError(where, f"{shown(value)} is not one of the choices.", _choices_fix(spec))
        return
    if spec.type not in _LITERAL_CHECKS:
        if spec.type != "*":  # an IMAGE, MODEL, ... exists only as another node's output
            raise EditError(where, f"The input takes {spec.type} from another node, but it holds the value "
                                   f"{shown(value)}.", f"Connect an output of type {spec.type} to it.")
        return
    wanted, accepts = _LITERAL_CHECKS[spec.type]
    if not accepts(value):
        raise EditError(where, f"{shown(value)} is not {wanted} ({spec.type}).", f"Give {wanted}.")
    low, high = spec.opts.get("min"), spec.opts.get("max")
    bounds = f"from {'-∞' if low is None else low} to {'∞' if high is None else high}"
    if spec.type == "FLOAT" and not _is_finite(value):  # NaN would pass the range check: it compares false
        raise EditError(where, f"{shown(value)} is not a finite number.", f"Use a value {bounds}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise EditError(where, f"{shown(value)} is out of range ({bounds}).", f"Use a value {bounds}.")


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # a whole number too large for a float
        return False


def _choices_fix(spec: InputSpec) -> str:
    shown = ", ".join(repr(choice) for choice in spec.choices[:_SHOWN_CHOICES])
    hidden = len(spec.choices) - _SHOWN_CHOICES
    listing = f"one of: {shown}" + (f" (and {hidden} more)" if hidden > 0 else "")
    if spec.opts.get("image_upload"):
        folder = current_context().input_dir
        if not spec.choices:
            return f"Put the file in the input folder {folder}, or pass another folder with --input-dir."
        return f"Put the file in the input folder {folder} (or pass another with --input-dir), or use {listing}."
    return f"Use {listing}." if spec.choices else "This input currently offers no choices."


def _output_type(prompt: dict, classes: Mapping[str, type], link: list) -> str:
    return type_name(classes[prompt[str(link[0])]["class_type"]].RETURN_TYPES[link[1]])
