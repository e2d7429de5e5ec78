"""Broken copies of the shipped workflows never end in a traceback.

Each case mutates a shipped workflow at random (a fixed seed): its UI file, or its API
conversion. It must either pass the runner's checks or fail them with an EditError, the error
a user reads. Structure problems must be caught there, before anything runs. A few of the
cases that pass and hand the nodes other values are then run (with one step and small
pictures, to stay fast), and must end in a run or an EditError as well.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import traceback
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path

import numpy as np
from PIL import Image

from unpaired_edit.core.errors import EditError
from unpaired_edit.runner import check_workflow, run_workflow, ui_to_api
from unpaired_edit.runner.context import RunContext, use_context
from unpaired_edit.runner.input_specs import input_specs, widget_slots
from unpaired_edit.runner.registry import pack_node_classes, with_io_nodes

SEED = 12
UI_CASES, API_CASES = 400, 200
RUNS = 6  # cases that passed the checks and give nodes other values, run: each workflow in turn
WORKFLOWS = Path(__file__).parents[1] / "workflows"
SHIPPED = {path.stem: json.loads(path.read_text()) for path in sorted(WORKFLOWS.glob("*.json"))}
JUNK = [None, True, False, 0, -1, 3, 2.5, math.nan, math.inf, -math.inf, 10**30, 1e308, 10**400, "", "x", "NaN",
        "0", [], [0], ["1", "0"], ["999", 0], [1, 0, 0], ["3", -1], {}, {"id": 1}]
CLASSES = with_io_nodes(pack_node_classes())

Mutation = Callable[[random.Random, dict], "str | None"]  # changes the workflow in place; None: not applicable


def junk(rng: random.Random):
    return copy.deepcopy(rng.choice(JUNK))


# --- mutations shared by both formats: widget values -----------------------------------------


def edge_value(rng: random.Random, spec) -> object:
    """A value at or past the edges a numeric or combo input accepts."""
    if spec.type == "COMBO":
        return rng.choice(spec.choices or [""])  # a valid choice: another model, image, colour...
    low, high = spec.opts.get("min", -(2**63)), spec.opts.get("max", 2**64)
    return rng.choice([low, high, low - 1, high + 1, high * 10, (low + high) / 2, math.nan, math.inf, -math.inf,
                       float(low), str(high), None])


# --- UI-format mutations ------------------------------------------------------------------


def dict_nodes(ui: dict) -> list[dict]:
    nodes = ui.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def list_links(ui: dict) -> list:
    links = ui.get("links")
    return links if isinstance(links, list) else []


def widget_positions(node: dict) -> list[tuple[int, object]]:
    """(index in widgets_values, spec) of each widget a known node saves."""
    cls = CLASSES.get(node.get("type")) if isinstance(node.get("type"), str) else None
    saved = node.get("widgets_values")
    if cls is None or not isinstance(saved, list):
        return []
    specs = input_specs(cls)
    return [(i, specs[name]) for i, name in enumerate(widget_slots(specs)) if name is not None and i < len(saved)]


def ui_drop_field(rng, ui):
    nodes = [n for n in dict_nodes(ui) if n]
    if not nodes:
        return None
    node = rng.choice(nodes)
    key = rng.choice(sorted(node))
    del node[key]
    return f"node {node.get('id')}: drop {key!r}"


def ui_retype_field(rng, ui):
    nodes = [n for n in dict_nodes(ui) if n]
    if not nodes:
        return None
    node = rng.choice(nodes)
    key = rng.choice(sorted(node))
    node[key] = junk(rng)
    return f"node {node.get('id')}: {key} = {node[key]!r}"


def ui_widget_junk(rng, ui):
    nodes = [n for n in dict_nodes(ui) if isinstance(n.get("widgets_values"), list) and n["widgets_values"]]
    if not nodes:
        return None
    node = rng.choice(nodes)
    index = rng.randrange(len(node["widgets_values"]))
    node["widgets_values"][index] = junk(rng)
    return f"node {node.get('id')}: widgets_values[{index}] = {node['widgets_values'][index]!r}"


def ui_widget_edge(rng, ui):
    slots = [(n, i, spec) for n in dict_nodes(ui) for i, spec in widget_positions(n)]
    if not slots:
        return None
    node, index, spec = rng.choice(slots)
    node["widgets_values"][index] = edge_value(rng, spec)
    return f"node {node.get('id')}: {spec.name} = {node['widgets_values'][index]!r}"


def ui_widget_swap(rng, ui):
    slots = [(n, i) for n in dict_nodes(ui) if isinstance(n.get("widgets_values"), list)
             for i in range(len(n["widgets_values"]))]
    if len(slots) < 2:
        return None
    (a, i), (b, j) = rng.sample(slots, 2)
    a["widgets_values"][i], b["widgets_values"][j] = b["widgets_values"][j], a["widgets_values"][i]
    return f"swap node {a.get('id')} widgets_values[{i}] with node {b.get('id')} widgets_values[{j}]"


def ui_widgets_resize(rng, ui):
    nodes = [n for n in dict_nodes(ui) if isinstance(n.get("widgets_values"), list)]
    if not nodes:
        return None
    node = rng.choice(nodes)
    saved = node["widgets_values"]
    if rng.random() < 0.5:
        del saved[rng.randrange(len(saved) + 1):]
    else:
        saved += [junk(rng) for _ in range(rng.randint(1, 3))]
    return f"node {node.get('id')}: widgets_values = {saved!r}"


def ui_widgets_by_name(rng, ui):
    """Newer nodes save widgets as an object by name; some names here are wrong."""
    nodes = [n for n in dict_nodes(ui) if widget_positions(n)]
    if not nodes:
        return None
    node = rng.choice(nodes)
    names = {spec.name if rng.random() < 0.8 else spec.name + "_old": node["widgets_values"][i]
             for i, spec in widget_positions(node)}
    node["widgets_values"] = names
    return f"node {node.get('id')}: widgets_values = {names!r}"


def ui_link_drop(rng, ui):
    links = list_links(ui)
    if not links:
        return None
    return f"drop link {links.pop(rng.randrange(len(links)))!r}"


def ui_link_shorten(rng, ui):
    links = [i for i, link in enumerate(list_links(ui)) if isinstance(link, list) and link]
    if not links:
        return None
    index = rng.choice(links)
    del ui["links"][index][rng.randrange(len(ui["links"][index])):]
    return f"links[{index}] = {ui['links'][index]!r}"


def ui_link_duplicate(rng, ui):
    links = list_links(ui)
    if not links:
        return None
    copied = copy.deepcopy(rng.choice(links))
    if isinstance(copied, list) and len(copied) > 2 and rng.random() < 0.5:
        copied[1] = rng.choice([n.get("id") for n in dict_nodes(ui)] or [1])  # same id, another origin
    links.append(copied)
    return f"append link {copied!r}"


def ui_link_field(rng, ui):
    links = [i for i, link in enumerate(list_links(ui)) if isinstance(link, list) and len(link) > 2]
    if not links:
        return None
    index = rng.choice(links)
    field = rng.randrange(len(ui["links"][index]))
    ui["links"][index][field] = rng.choice([999, 9, -1, "0", None, junk(rng)])  # missing node, slot, ...
    return f"links[{index}][{field}] = {ui['links'][index][field]!r}"


def ui_link_entry(rng, ui):
    links = list_links(ui)
    if not links:
        return None
    index = rng.randrange(len(links))
    as_object = isinstance(links[index], list) and rng.random() < 0.5  # the newer spelling, maybe short
    links[index] = dict(zip(("id", "origin_id", "origin_slot"), links[index])) if as_object else junk(rng)
    return f"links[{index}] = {links[index]!r}"


def ui_input_slot(rng, ui):
    slots = [s for n in dict_nodes(ui) if isinstance(n.get("inputs"), list) for s in n["inputs"]
             if isinstance(s, dict)]
    if not slots:
        return None
    slot = rng.choice(slots)
    key = rng.choice(["link", "link", "name", "type"])
    slot[key] = rng.choice([999, None, "nope", junk(rng)])
    return f"input slot {slot.get('name')!r}: {key} = {slot[key]!r}"


def ui_node_type(rng, ui):
    nodes = dict_nodes(ui)
    if not nodes:
        return None
    node = rng.choice(nodes)
    node["type"] = rng.choice(["Nope", "Reroute", "PrimitiveNode", "Note", *sorted(CLASSES), junk(rng)])
    return f"node {node.get('id')}: type = {node['type']!r}"


def ui_node_mode(rng, ui):
    nodes = dict_nodes(ui)
    if not nodes:
        return None
    node = rng.choice(nodes)
    node["mode"] = rng.choice([0, 2, 4, 4, junk(rng)])
    return f"node {node.get('id')}: mode = {node['mode']!r}"


def ui_node_id(rng, ui):
    nodes = dict_nodes(ui)
    if not nodes:
        return None
    node = rng.choice(nodes)
    node["id"] = rng.choice([rng.choice(nodes).get("id"), str(node.get("id")), 10**6, junk(rng)])
    return f"a node's id = {node['id']!r}"


def ui_node_entry(rng, ui):
    nodes = ui.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return None
    index = rng.randrange(len(nodes))
    choice = rng.choice(["drop", "duplicate", "junk"])
    if choice == "drop":
        nodes.pop(index)
    elif choice == "duplicate":
        nodes.append(copy.deepcopy(nodes[index]))
    else:
        nodes[index] = junk(rng)
    return f"nodes[{index}]: {choice}"


def ui_top_level(rng, ui):
    key = rng.choice(["nodes", "links", "definitions", "definitions"])
    if key == "definitions" and rng.random() < 0.5:
        ui[key] = {"subgraphs": rng.choice([[], [{"id": "ab12", "name": "Upscale"}], ["x"], {}])}
    elif rng.random() < 0.2:
        ui.pop(key, None)
    else:
        ui[key] = junk(rng)
    return f"{key} = {ui.get(key, '(dropped)')!r}"


UI_MUTATIONS: list[Mutation] = [
    ui_drop_field, ui_retype_field, ui_widget_junk, ui_widget_edge, ui_widget_edge, ui_widget_swap,
    ui_widgets_resize, ui_widgets_by_name, ui_link_drop, ui_link_shorten, ui_link_duplicate, ui_link_field,
    ui_link_entry, ui_input_slot, ui_node_type, ui_node_mode, ui_node_id, ui_node_entry, ui_top_level,
]


# --- API-format mutations -----------------------------------------------------------------


def api_nodes(api: dict) -> list[tuple[str, dict]]:
    return [(i, n) for i, n in api.items() if isinstance(n, dict)]


def api_inputs(api: dict) -> list[tuple[str, dict, str]]:
    return [(i, n, name) for i, n in api_nodes(api) if isinstance(n.get("inputs"), dict) for name in n["inputs"]]


def api_node_entry(rng, api):
    node_id = rng.choice(sorted(api))
    if rng.random() < 0.5:
        del api[node_id]
        return f"drop node {node_id}"
    api[node_id] = junk(rng)
    return f"node {node_id} = {api[node_id]!r}"


def api_node_field(rng, api):
    nodes = api_nodes(api)
    if not nodes:
        return None
    node_id, node = rng.choice(nodes)
    key = rng.choice(["class_type", "class_type", "inputs", "inputs", "_meta"])
    if rng.random() < 0.3:
        node.pop(key, None)
        return f"node {node_id}: drop {key}"
    node[key] = rng.choice(["Nope", *sorted(CLASSES), junk(rng)]) if key == "class_type" else junk(rng)
    return f"node {node_id}: {key} = {node[key]!r}"


def api_input_value(rng, api):
    inputs = api_inputs(api)
    if not inputs:
        return None
    node_id, node, name = rng.choice(inputs)
    cls = CLASSES.get(node.get("class_type")) if isinstance(node.get("class_type"), str) else None
    spec = input_specs(cls).get(name) if cls else None
    if rng.random() < 0.2:
        del node["inputs"][name]
    elif spec is not None and spec.type in ("INT", "FLOAT", "COMBO") and rng.random() < 0.6:
        node["inputs"][name] = edge_value(rng, spec)
    else:
        node["inputs"][name] = junk(rng)
    return f"node {node_id}: {name} = {node['inputs'].get(name, '(dropped)')!r}"


def api_link(rng, api):
    links = [(i, n, name) for i, n, name in api_inputs(api) if isinstance(n["inputs"][name], list)]
    if not links:
        return None
    node_id, node, name = rng.choice(links)
    source = node["inputs"][name][0] if node["inputs"][name] else "1"
    node["inputs"][name] = rng.choice([["999", 0], [source, 9], [source, -1], [source, "0"], [source],
                                       [source, 0, 0], [1.5, 0], [None, 0], [source, True]])
    return f"node {node_id}: {name} = {node['inputs'][name]!r}"


def api_swap(rng, api):
    inputs = api_inputs(api)
    if len(inputs) < 2:
        return None
    (i, a, x), (j, b, y) = rng.sample(inputs, 2)
    a["inputs"][x], b["inputs"][y] = b["inputs"][y], a["inputs"][x]
    return f"swap node {i} {x} with node {j} {y}"


def api_extra_input(rng, api):
    nodes = [(i, n) for i, n in api_nodes(api) if isinstance(n.get("inputs"), dict)]
    if not nodes:
        return None
    node_id, node = rng.choice(nodes)
    node["inputs"]["unexpected"] = junk(rng)
    return f"node {node_id}: add input 'unexpected' = {node['inputs']['unexpected']!r}"


API_MUTATIONS: list[Mutation] = [api_node_entry, api_node_field, api_input_value, api_input_value, api_link,
                                 api_swap, api_extra_input]


# --- the cases ----------------------------------------------------------------------------


def mutate(rng: random.Random, workflow: dict, mutations: list[Mutation]) -> list[str]:
    """Apply one to three applicable mutations; return what they did."""
    done: list[str] = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        for _attempt in range(10):
            description = rng.choice(mutations)(rng, workflow)
            if description is not None:
                done.append(description)
                break
    return done


def make_input_dir(folder: Path) -> Path:
    """The shipped input pictures (at most 16 pixels a side, to run fast) and files LoadImage must
    refuse or handle: corrupt, empty, one pixel, 16-bit grey."""
    folder.mkdir()
    for path in (WORKFLOWS / "input").glob("*.png"):
        with Image.open(path) as picture:
            picture.resize((min(16, picture.width), min(16, picture.height))).save(folder / path.name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(folder / "tiny.png")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(folder / "grey16.png")
    return folder


def make_cases(input_dir: Path) -> list[tuple[str, str, dict]]:
    """(description, workflow name, mutated workflow): UI files first, then API conversions.
    Load Image's choices are the files in ``input_dir``."""
    rng = random.Random(SEED)
    apis = {name: ui_to_api(ui, CLASSES) for name, ui in SHIPPED.items()}
    cases = []
    with use_context(RunContext(input_dir, input_dir)):
        for index in range(UI_CASES + API_CASES):
            name, as_ui = rng.choice(sorted(SHIPPED)), index < UI_CASES
            workflow = copy.deepcopy(SHIPPED[name] if as_ui else apis[name])
            mutations = mutate(rng, workflow, UI_MUTATIONS if as_ui else API_MUTATIONS)
            kind = "UI" if as_ui else "API"
            cases.append((f"case {index} ({name}, {kind}): {'; '.join(mutations)}", name, workflow))
    return cases


def what_runs(prompt: dict, order: list[str]) -> dict:
    """The nodes that would run, each with its type and the declared inputs it would get."""
    ran = {}
    for node_id in order:
        node = prompt[node_id]
        declared = input_specs(CLASSES[node["class_type"]])
        ran[node_id] = [node["class_type"], {k: v for k, v in node["inputs"].items() if k in declared}]
    return ran


def values_changed(ran: dict, shipped: dict) -> bool:
    """The shipped workflow's nodes run, but some get other values or links: what only running
    can test (a changed structure was the checks' business)."""
    return ran != shipped and {i: r[0] for i, r in ran.items()} == {i: r[0] for i, r in shipped.items()}


def quick(prompt: dict) -> dict:
    """One step and pictures of at most 32 pixels, so running a case takes a moment."""
    for node in prompt.values():
        inputs = node["inputs"]
        if isinstance(inputs.get("steps"), int):
            inputs["steps"] = 1
        if isinstance(inputs.get("pixels"), int):
            inputs["pixels"] = min(inputs["pixels"], 32)
    return prompt


def outcome(action: Callable[[], object], case: str, failures: list[str]) -> object | None:
    """What ``action`` returns; None after an EditError. Any other exception is a failure,
    recorded with the case's mutations and where it was raised."""
    try:
        return action()
    except EditError as err:
        assert str(err).startswith("[workflow") and " Fix: " in str(err), f"{case}: a message without its place: {err}"
        return None
    except Exception as err:  # noqa: BLE001 - every other exception is a bug the test reports
        frame = traceback.extract_tb(err.__traceback__)[-1]
        failures.append(f"{case}\n    {type(err).__name__}: {err} (at {Path(frame.filename).name}:{frame.lineno})")
        return None


def test_mutated_workflows_end_in_a_run_or_a_clear_message(tmp_path, models_dir):
    started = time.monotonic()
    input_dir = make_input_dir(tmp_path / "input")
    shipped = {name: what_runs(*check_workflow(ui, CLASSES, input_dir=input_dir)) for name, ui in SHIPPED.items()}
    failures: list[str] = []
    to_run: dict[str, dict[str, tuple[str, dict]]] = {name: {} for name in SHIPPED}  # distinct runs, by workflow
    cases, refused = make_cases(input_dir), 0
    for case, name, workflow in cases:
        checked = outcome(lambda: check_workflow(workflow, CLASSES, input_dir=input_dir), case, failures)
        if checked is None:
            refused += 1
        elif values_changed(ran := what_runs(*checked), shipped[name]):
            to_run[name].setdefault(json.dumps(ran, sort_keys=True, default=repr), (case, checked[0]))
    chosen = [entry for group in zip_longest(*(runs.values() for runs in to_run.values())) for entry in group
              if entry is not None][:RUNS]
    for run, (case, prompt) in enumerate(chosen):
        output_dir = tmp_path / f"out{run}"
        outcome(lambda: run_workflow(quick(prompt), CLASSES, input_dir=input_dir, output_dir=output_dir),
                f"{case} (while running)", failures)
    assert not failures, f"{len(failures)} case(s) ended in a traceback:\n" + "\n".join(failures)
    assert refused > len(cases) / 2 and len(chosen) == RUNS, (refused, len(chosen))  # both roads were taken
    print(f"{len(cases)} cases: {refused} refused by the checks; of those passed, {sum(map(len, to_run.values()))} "
          f"give nodes other values; {len(chosen)} run; {time.monotonic() - started:.1f} s")
