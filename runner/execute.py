"""Runs a workflow without ComfyUI: load, override, validate everything, then execute."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import EditError
from .context import RunContext, use_context
from .convert import as_api, load_workflow
from .graph import is_link, node_label
from .input_specs import hidden_inputs, input_specs
from .overrides import apply_overrides
from .registry import with_io_nodes
from .validate import validate_prompt


@dataclass
class RunResult:
    """What a run produced: each executed node's outputs (a tuple, by node id), the ``ui``
    dicts output nodes returned, and the files written."""

    outputs: dict[str, tuple] = field(default_factory=dict)
    ui: dict[str, dict] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def default_input_dir(workflow_path: Path | None) -> Path:
    """The ``input`` folder next to the workflow file if there is one, else the file's folder."""
    if workflow_path is None:
        return Path("input")
    beside = workflow_path.parent / "input"
    return beside if beside.is_dir() else workflow_path.parent


def run_workflow(
    workflow: dict | str | Path,
    node_classes: Mapping[str, type],
    *,
    overrides: Mapping[str, Any] | Iterable[str] = (),
    input_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
) -> RunResult:
    """Run a UI- or API-format workflow (a dict or a JSON file) with ``node_classes`` plus
    the image I/O nodes. Every problem found before running raises `EditError`, and so do
    the nodes' own errors, named by workflow and node id."""
    classes = with_io_nodes(node_classes)
    ctx = RunContext(_input_dir(workflow, input_dir), Path(output_dir) if output_dir is not None else Path("output"))
    with use_context(ctx):  # LoadImage's choices depend on the input folder
        prompt, order = _checked(workflow, classes, overrides)
        return _execute(prompt, order, classes, ctx, _label(workflow))


def check_workflow(
    workflow: dict | str | Path,
    node_classes: Mapping[str, type],
    *,
    overrides: Mapping[str, Any] | Iterable[str] = (),
    input_dir: str | Path | None = None,
) -> tuple[dict, list[str]]:
    """Everything `run_workflow` does before running a node: the checked API-format prompt and
    the ids of the nodes to run, in order. Raises `EditError` for any problem."""
    with use_context(RunContext(_input_dir(workflow, input_dir), Path("output"))):
        return _checked(workflow, with_io_nodes(node_classes), overrides)


def _label(workflow: dict | str | Path) -> str:
    return "workflow" if isinstance(workflow, dict) else f"workflow {Path(workflow).name}"


def _input_dir(workflow: dict | str | Path, given: str | Path | None) -> Path:
    if given is not None:
        return Path(given)
    return default_input_dir(None if isinstance(workflow, dict) else Path(workflow))


def _checked(
    workflow: dict | str | Path, classes: Mapping[str, type], overrides: Mapping[str, Any] | Iterable[str]
) -> tuple[dict, list[str]]:
    label = _label(workflow)
    if isinstance(workflow, dict):
        prompt = as_api(copy.deepcopy(workflow), classes, label=label)
    else:
        prompt = load_workflow(workflow, classes)
    apply_overrides(prompt, overrides, classes, label)
    return prompt, validate_prompt(prompt, classes, label)


def _execute(
    prompt: dict, order: list[str], classes: Mapping[str, type], ctx: RunContext, label: str
) -> RunResult:
    result = RunResult()
    for node_id in order:
        cls = classes[prompt[node_id]["class_type"]]
        try:
            returned = getattr(cls(), cls.FUNCTION)(**_call_args(prompt, node_id, cls, result.outputs))
            if inspect.iscoroutine(returned):
                returned = asyncio.run(returned)
        except EditError as err:  # the node names itself and its input; say which node of which file
            raise EditError(f"{label} › node {node_id} › {err.where}", err.problem, err.fix) from err
        ui, outputs = _split_return(returned, f"{label} › {node_label(prompt, node_id)}")
        result.outputs[node_id] = outputs
        if ui:
            result.ui[node_id] = ui
            result.files += _files_in(ui, ctx)
    return result


def _call_args(prompt: dict, node_id: str, cls: type, outputs: dict[str, tuple]) -> dict[str, Any]:
    """Keyword arguments for the node's function: declared inputs that are present (linked
    ones read from earlier outputs), plus the hidden UNIQUE_ID / PROMPT it asks for."""
    specs = input_specs(cls)
    args = {}
    for name, value in (prompt[node_id].get("inputs") or {}).items():
        if name in specs:
            args[name] = outputs[str(value[0])][value[1]] if is_link(value) else specs[name].coerce(value)
    for name, wanted in hidden_inputs(cls).items():
        if wanted == "UNIQUE_ID":
            args[name] = node_id
        elif wanted == "PROMPT":
            args[name] = prompt
    return args


def _split_return(returned: Any, where: str) -> tuple[dict, tuple]:
    """(ui, outputs) from a node function's tuple or ``{"ui": ..., "result": ...}``."""
    if isinstance(returned, dict):
        if "expand" in returned:
            raise EditError(
                where,
                "The node expands into a sub-graph, which the headless runner does not support.",
                "Run this workflow in ComfyUI.",
            )
        return returned.get("ui") or {}, tuple(returned.get("result") or ())
    if returned is None or isinstance(returned, (tuple, list)):
        return {}, tuple(returned or ())
    raise TypeError(f"{where}: the node function returned {type(returned).__name__}; nodes must return a tuple.")


def _files_in(ui: dict, ctx: RunContext) -> list[Path]:
    """Files a node reports in ComfyUI's ui convention: lists of {filename, subfolder, type}."""
    folders = ctx.folders
    return [
        folders[entry.get("type", "output")] / entry.get("subfolder", "") / entry["filename"]
        for entries in ui.values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict) and "filename" in entry and entry.get("type", "output") in folders
    ]
