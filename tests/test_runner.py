"""The headless runner: UI→API conversion, validation, execution, image I/O and the CLI.

Uses small node classes defined here, so nothing depends on the pack's own nodes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired_edit.core.errors import EditError
from unpaired_edit.runner import RunResult, check_workflow, load_workflow, run_workflow, ui_to_api
from unpaired_edit.runner.cli import main
from unpaired_edit.runner.convert import is_api_format
from unpaired_edit.runner.image_nodes import IO_NODE_CLASSES
from unpaired_edit.runner.overrides import parse_overrides

CALLS: list[tuple[str, str]] = []  # (class name, node id) in the order nodes ran


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


class Number:
    """Widgets of every kind, with a seed (the frontend saves a control value after it)."""

    RETURN_TYPES = ("INT", "FLOAT")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**32}),
                "count": ("INT", {"default": 1, "min": 1, "max": 10}),
                "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0}),
                "mode": (["add", "mul"],),
            },
            "optional": {"label": ("STRING", {"default": "x"})},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def make(self, seed, count, scale, mode, unique_id, label="x"):
        CALLS.append(("Number", unique_id))
        return (seed + count if mode == "add" else seed * count, scale * count)


class Picker:
    """Inputs that declare control_after_generate (a combo stores two extra values)."""

    RETURN_TYPES = ("STRING",)
    FUNCTION = "pick"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "choice": (["a", "b", "c"], {"control_after_generate": True}),
                "n": ("INT", {"default": 5, "control_after_generate": True}),
                "flag": ("BOOLEAN", {"default": False}),
            }
        }

    def pick(self, choice, n, flag):
        return (f"{choice}{n}{flag}",)


class Add:
    RETURN_TYPES = ("INT",)
    FUNCTION = "add"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "a": ("INT", {"forceInput": True}),
                "b": ("INT", {"default": 0, "min": -100, "max": 100}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def add(self, a, b, unique_id):
        CALLS.append(("Add", unique_id))
        return (a + b,)


class Text:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "text"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def text(self, text):
        return (text,)


class Record:
    """An output node that records what reached it."""

    RETURN_TYPES = ()
    FUNCTION = "record"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"value": ("INT", {"forceInput": True})},
            "optional": {"extra": ("*", {})},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"},
        }

    def record(self, value, unique_id, prompt, extra=None):
        CALLS.append(("Record", unique_id))
        assert unique_id in prompt
        return {"ui": {"value": [value], "extra": [extra]}}


class Even:
    """A node with its own VALIDATE_INPUTS."""

    RETURN_TYPES = ("INT",)
    FUNCTION = "same"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 0, "max": 10})}}

    @classmethod
    def VALIDATE_INPUTS(cls, n):
        return True if n % 2 == 0 else f"n must be even, got {n}"

    def same(self, n):
        return (n,)


CLASSES = {"Number": Number, "Picker": Picker, "Add": Add, "Text": Text, "Record": Record, "Even": Even}


# --- UI-format helpers --------------------------------------------------------------------


def ui_node(node_id, kind, widgets=None, inputs=(), outputs=(), mode=0, **extra):
    """A UI node; ``inputs`` are (name, type, link id or None), ``outputs`` (name, type)."""
    node = {
        "id": node_id,
        "type": kind,
        "mode": mode,
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": n, "type": t, "links": []} for n, t in outputs],
        **extra,
    }
    if widgets is not None:
        node["widgets_values"] = widgets
    return node


def ui_workflow(nodes, links, dict_links=False):
    """``links`` as (id, from_node, from_slot, to_node, to_slot, type) tuples."""
    if dict_links:
        keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
        links = [dict(zip(keys, link)) for link in links]
    else:
        links = [list(link) for link in links]
    return {"last_node_id": max(n["id"] for n in nodes), "last_link_id": len(links), "nodes": nodes,
            "links": links, "version": 0.4}


def number_node(node_id=1, widgets=(42, "randomize", 3, 2.5, "mul", "hi"), **kw):
    widgets = None if widgets is None else list(widgets)
    return ui_node(node_id, "Number", widgets, outputs=[("INT", "INT"), ("FLOAT", "FLOAT")], **kw)


def record_node(node_id, link, extra_link=None):
    return ui_node(node_id, "Record", [], inputs=[("value", "INT", link), ("extra", "*", extra_link)])


# --- UI → API conversion ------------------------------------------------------------------


@pytest.mark.parametrize("dict_links", [False, True])
def test_links_become_source_and_slot(dict_links):
    ui = ui_workflow(
        [number_node(1), ui_node(2, "Add", [7], inputs=[("a", "INT", 1)], outputs=[("INT", "INT")]),
         record_node(3, 2, extra_link=3)],
        [(1, 1, 0, 2, 0, "INT"), (2, 2, 0, 3, 0, "INT"), (3, 1, 1, 3, 1, "FLOAT")],
        dict_links=dict_links,
    )
    api = ui_to_api(ui, CLASSES)
    assert api["2"] == {"class_type": "Add", "inputs": {"b": 7, "a": ["1", 0]}, "_meta": {"title": "Add"}}
    assert api["3"]["inputs"] == {"value": ["2", 0], "extra": ["1", 1]}
    assert is_api_format(api) and not is_api_format(ui)


def test_widget_order_skips_the_control_value_after_seed():
    api = ui_to_api(ui_workflow([number_node(1)], []), CLASSES)
    assert api["1"]["inputs"] == {"seed": 42, "count": 3, "scale": 2.5, "mode": "mul", "label": "hi"}


def test_control_after_generate_option_skips_one_value_or_two_for_a_combo():
    picker = ui_node(1, "Picker", ["b", "fixed", "", 7, "randomize", True], outputs=[("STRING", "STRING")])
    assert ui_to_api(ui_workflow([picker], []), CLASSES)["1"]["inputs"] == {"choice": "b", "n": 7, "flag": True}


def test_dict_widgets_values_are_read_by_name():
    node = number_node(1, widgets=None, widgets_values={"count": 4, "mode": "add", "videopreview": {}})
    inputs = ui_to_api(ui_workflow([node], []), CLASSES)["1"]["inputs"]
    assert inputs == {"seed": 0, "count": 4, "scale": 1.0, "mode": "add", "label": "x"}


def test_widgets_added_after_saving_get_their_defaults():
    inputs = ui_to_api(ui_workflow([number_node(1, widgets=(9, "fixed", 2))], []), CLASSES)["1"]["inputs"]
    assert inputs == {"seed": 9, "count": 2, "scale": 1.0, "mode": "add", "label": "x"}


def test_a_linked_widget_keeps_its_saved_slot_and_the_link_wins():
    source = ui_node(1, "Add", [0], inputs=[("a", "INT", None)], outputs=[("INT", "INT")])
    target = number_node(2, inputs=[("seed", "INT", 1)])
    inputs = ui_to_api(ui_workflow([source, target], [(1, 1, 0, 2, 0, "INT")]), CLASSES)["2"]["inputs"]
    assert inputs == {"seed": ["1", 0], "count": 3, "scale": 2.5, "mode": "mul", "label": "hi"}


def test_reroutes_are_followed_to_the_real_source():
    reroutes = [ui_node(5, "Reroute", None, inputs=[("", "*", 1)], outputs=[("", "INT")]),
                ui_node(6, "Reroute", None, inputs=[("", "*", 2)], outputs=[("", "INT")])]
    ui = ui_workflow([number_node(1), *reroutes, record_node(3, 3)],
                     [(1, 1, 0, 5, 0, "INT"), (2, 5, 0, 6, 0, "INT"), (3, 6, 0, 3, 0, "INT")])
    api = ui_to_api(ui, CLASSES)
    assert set(api) == {"1", "3"} and api["3"]["inputs"] == {"value": ["1", 0]}


def test_a_primitive_node_becomes_the_literal_it_feeds():
    primitive = ui_node(4, "PrimitiveNode", [17, "fixed"], outputs=[("INT", "INT")])
    ui = ui_workflow([primitive, number_node(1, inputs=[("count", "INT", 1)])], [(1, 4, 0, 1, 1, "INT")])
    api = ui_to_api(ui, CLASSES)
    assert set(api) == {"1"} and api["1"]["inputs"]["count"] == 17


def test_muted_nodes_are_dropped_and_their_links_leave_inputs_missing():
    ui = ui_workflow([number_node(1, mode=2), record_node(3, 1)], [(1, 1, 0, 3, 0, "INT")])
    api = ui_to_api(ui, CLASSES)
    assert set(api) == {"3"} and api["3"]["inputs"] == {}


def test_a_bypassed_node_passes_its_input_of_the_output_type_through():
    bypassed = ui_node(2, "Add", [5], inputs=[("a", "INT", 1)], outputs=[("INT", "INT")], mode=4)
    links = [(1, 1, 0, 2, 0, "INT"), (2, 2, 0, 3, 0, "INT")]
    ui = ui_workflow([number_node(1), bypassed, record_node(3, 2)], links)
    api = ui_to_api(ui, CLASSES)
    assert set(api) == {"1", "3"} and api["3"]["inputs"] == {"value": ["1", 0]}


def test_notes_are_dropped_and_titles_kept():
    notes = [ui_node(7, "Note", ["hello"]), ui_node(8, "MarkdownNote", ["# hi"])]
    api = ui_to_api(ui_workflow([number_node(1, title="My number"), *notes], []), CLASSES)
    assert set(api) == {"1"} and api["1"]["_meta"] == {"title": "My number"}


def test_subgraphs_are_refused_with_the_export_advice():
    ui = ui_workflow([number_node(1)], [])
    ui["definitions"] = {"subgraphs": [{"id": "b43bb7e6", "name": "Upscale"}]}
    with pytest.raises(EditError, match="Export \\(API\\)") as err:
        ui_to_api(ui, CLASSES)
    assert "Upscale" in str(err.value)


def test_load_workflow_converts_a_ui_file(tmp_path):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(ui_workflow([number_node(1)], [])))
    assert load_workflow(path, CLASSES)["1"]["inputs"]["seed"] == 42
    path.write_text(json.dumps({"prompt": {"1": {"class_type": "Text", "inputs": {"text": "a"}}}}))
    assert load_workflow(path, CLASSES) == {"1": {"class_type": "Text", "inputs": {"text": "a"}}}


# --- execution ----------------------------------------------------------------------------


def api_chain():
    """1 Number → 2 Add → 4 Record, 1 → 3 Add (feeds no output), 5 Add ← 2."""
    return {
        "1": {"class_type": "Number", "inputs": {"seed": 2, "count": 3, "scale": 1, "mode": "add"}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 10}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "5": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": -1}},
        "4": {"class_type": "Record", "inputs": {"value": ["5", 0], "extra": ["1", 1]}},
    }


def test_runs_only_what_outputs_need_in_dependency_order(tmp_path):
    result = run_workflow(api_chain(), CLASSES, output_dir=tmp_path)
    assert isinstance(result, RunResult)
    assert CALLS == [("Number", "1"), ("Add", "2"), ("Add", "5"), ("Record", "4")]
    assert result.outputs["5"] == (14,) and "3" not in result.outputs
    assert result.ui["4"] == {"value": [14], "extra": [3.0]}  # the FLOAT got 1 as 1.0
    assert result.files == []


def test_a_ui_workflow_runs_end_to_end(tmp_path):
    ui = ui_workflow([number_node(1), record_node(3, 1)], [(1, 1, 0, 3, 0, "INT")])
    assert run_workflow(ui, CLASSES, output_dir=tmp_path).ui["3"]["value"] == [126]  # 42 * 3


def test_override_values_are_read_as_json_else_as_text():
    parsed = parse_overrides(["5.steps=20", '5.name="20"', "5.text=a cat", "5.on=true", '5.a=["1", 0]', "5.e="])
    assert parsed == [("5.steps", 20), ("5.name", "20"), ("5.text", "a cat"), ("5.on", True),
                      ("5.a", ["1", 0]), ("5.e", "")]


def test_overrides_change_the_run_not_the_callers_dict(tmp_path):
    workflow = api_chain()
    result = run_workflow(workflow, CLASSES, overrides=["2.b=-5", '1.mode="mul"'], output_dir=tmp_path)
    assert result.outputs["2"] == (1,)  # 2 * 3 - 5
    assert workflow["2"]["inputs"]["b"] == 10  # the caller's dict is left alone
    assert run_workflow(workflow, CLASSES, overrides={"2.b": 0}, output_dir=tmp_path).outputs["2"] == (5,)


def _broken(change):
    workflow = api_chain()
    change(workflow)
    return workflow


def _feed_a_from(kind, inputs):
    """A change that adds node 7 of ``kind`` and links node 2's input ``a`` to it."""
    return lambda w: w.update({"7": {"class_type": kind, "inputs": inputs}}) or w["2"]["inputs"].update(a=["7", 0])


@pytest.mark.parametrize(
    ("change", "overrides", "expected"),
    [
        (lambda w: w["2"].update(class_type="Ad"), (), ["node 2 (Ad)", "Unknown node type", "Add"]),
        (lambda w: w["2"]["inputs"].pop("b"), (), ["node 2 (Add) › b", "missing"]),
        (lambda w: w["2"]["inputs"].update(b=101), (), ["node 2 (Add) › b", "out of range"]),
        (lambda w: w["2"]["inputs"].update(b=True), (), ["node 2 (Add) › b", "whole number"]),
        (lambda w: w["1"]["inputs"].update(scale="big"), (), ["node 1 (Number) › scale", "not a number"]),
        (lambda w: w["1"]["inputs"].update(mode="sub"), (), ["node 1 (Number) › mode", "'sub'", "'add', 'mul'"]),
        (lambda w: w["2"]["inputs"].update(a=["9", 0]), (), ["node 2 (Add) › a", "node 9"]),
        (lambda w: w["2"]["inputs"].update(a=["1", 2]), (), ["node 2 (Add) › a", "output 2"]),
        (_feed_a_from("Text", {"text": "t"}), (), ["node 2 (Add) › a", "expects INT", "output 0 (STRING) of node 7"]),
        (lambda w: w["1"]["inputs"].update(seed=["5", 0]), (),
         ["cycle", "node 1 (Number) → node 2 (Add) → node 5 (Add) → node 1 (Number)."]),
        (lambda w: w.pop("4"), (), ["no output node"]),
        (lambda w: None, ["8.b=1"], ["override 8.b", "no node 8", "1, 2, 3, 4, 5"]),
        (lambda w: None, ["2.c=1"], ["override 2.c", "no input 'c'", "a, b"]),
        (lambda w: None, ["2b"], ["'2b'", "NODE_ID.INPUT=VALUE"]),
        (_feed_a_from("Even", {"n": 3}), (), ["node 7 (Even)", "n must be even, got 3"]),
        # NaN compares false with both bounds, so a range check alone lets it through.
        (lambda w: w["1"]["inputs"].update(scale=math.nan), (),
         ["node 1 (Number) › scale", "nan is not a finite number", "Use a value from 0.0 to 10.0"]),
        (lambda w: None, ["1.scale=-Infinity"], ["node 1 (Number) › scale", "-inf is not a finite number"]),
        (lambda w: w["1"]["inputs"].update(scale=10**400), (), ["node 1 (Number) › scale", "not a finite number"]),
        (lambda w: w["2"]["inputs"].update(b=math.nan), (), ["node 2 (Add) › b", "nan is not a whole number"]),
        (lambda w: w["2"]["inputs"].update(a=["1", "0"]), (), ["node 2 (Add) › a", "output slot '0'", '["4", 0]']),
        (lambda w: w["2"]["inputs"].update(a=["1"]), (), ["node 2 (Add) › a", "has 1 item, not 2"]),
        (lambda w: w["2"]["inputs"].update(a=[None, 0]), (), ["node 2 (Add) › a", "None, which is not a node id"]),
        (lambda w: w.update({"6": 3}), (), ["node 6]", "a number, not an object with class_type"]),
        (lambda w: w["2"].pop("class_type"), (), ["node 2]", "no class_type"]),
        (lambda w: w["2"].update(inputs=[1]), (), ["node 2 (Add) › inputs", "a list, not an object"]),
    ],
    ids=["unknown type", "missing input", "out of range", "bool for INT", "text for FLOAT", "bad combo",
         "link to missing node", "missing output slot", "type mismatch", "cycle", "no output", "override node",
         "override input", "override syntax", "VALIDATE_INPUTS", "NaN FLOAT", "-inf override", "huge FLOAT",
         "NaN INT", "text slot", "short link", "bad link node", "node not an object",
         "no class_type", "inputs not an object"],
)
def test_problems_are_found_before_anything_runs(change, overrides, expected, tmp_path):
    with pytest.raises(EditError) as err:
        run_workflow(_broken(change), CLASSES, overrides=overrides, output_dir=tmp_path)
    for text in expected:
        assert text in str(err.value)
    assert CALLS == []


def test_check_workflow_checks_everything_and_runs_nothing():
    prompt, order = check_workflow(api_chain(), CLASSES, overrides=["2.b=-5"])
    assert order == ["1", "2", "5", "4"] and prompt["2"]["inputs"]["b"] == -5
    assert CALLS == []


def _ui_chain():
    return ui_workflow([number_node(1), ui_node(2, "Add", [7], inputs=[("a", "INT", 1)], outputs=[("INT", "INT")]),
                        record_node(3, 2)], [(1, 1, 0, 2, 0, "INT"), (2, 2, 0, 3, 0, "INT")])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda ui: ui.update(nodes={"1": {}}), ["workflow › nodes]", "an object, not a list of nodes"]),
        (lambda ui: ui["nodes"].append("x"), ["nodes[3]", "text ('x'), not a node"]),
        (lambda ui: ui["nodes"][1].pop("id"), ["nodes[1] (Add)]", "no id"]),
        (lambda ui: ui["nodes"][1].update(id=[2]), ["nodes[1] (Add)]", "id [2] is not a node id"]),
        (lambda ui: ui["nodes"][2].update(id=1), ["node 1 (Record)]", "Two nodes have the id 1"]),
        (lambda ui: ui["nodes"][1].update(type=None), ["node 2]", "'type' is null"]),
        (lambda ui: ui["nodes"][1].update(mode="muted"), ["node 2 (Add) › mode", "text, not a number"]),
        (lambda ui: ui["nodes"][1].update(widgets_values=7), ["node 2 (Add) › widgets_values", "a number"]),
        (lambda ui: ui["nodes"][1].update(outputs=[None]), ["node 2 (Add) › outputs[0]", "not an object"]),
        (lambda ui: ui["nodes"][1]["inputs"].append(3), ["node 2 (Add) › inputs[1]", "not an object with a 'name'"]),
        (lambda ui: ui["nodes"][1]["inputs"][0].update(link="1"), ["node 2 (Add) › a", "link '1' is not a link id"]),
        (lambda ui: ui["nodes"].append(ui_node(4, "PrimitiveNode", {"value": 1})),
         ["node 4 (PrimitiveNode) › widgets_values", "must be a list"]),
        (lambda ui: ui.update(links="1,1,0"), ["workflow › links]", "text, not a list of links"]),
        (lambda ui: ui["links"].append(None), ["links[2]", "None is not a link [link id, origin node id"]),
        (lambda ui: ui["links"][0].__setitem__(2, "0"), ["links[0]", "output slot (whole numbers from 0)"]),
        (lambda ui: ui["links"].append([1, 2, 0, 3, 1, "INT"]), ["links[2]", "Two different links have the id 1"]),
        (lambda ui: ui.update(definitions=[]), ["workflow › definitions]", "not an object with a list of subgraphs"]),
    ],
    ids=["nodes an object", "node not an object", "no id", "bad id", "same id", "no type", "mode", "widgets",
         "output slot", "input slot", "link id", "primitive widgets", "links text", "link entry",
         "link slot", "same link id", "definitions"],
)
def test_a_broken_ui_file_is_named_field_by_field(change, expected):
    ui = _ui_chain()
    change(ui)
    with pytest.raises(EditError) as err:
        ui_to_api(ui, CLASSES, label="workflow")
    for text in expected:
        assert text in str(err.value)
    assert "Fix: " in str(err.value)


def test_identical_duplicate_links_and_object_links_are_read():
    ui = _ui_chain()
    ui["links"] += [list(ui["links"][0]), {"id": 2, "origin_id": 2, "origin_slot": 0}]
    assert ui_to_api(ui, CLASSES)["3"]["inputs"] == {"value": ["2", 0]}


# --- image nodes --------------------------------------------------------------------------


def write_rgba(path):
    rgba = np.zeros((5, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 255, 51, 0
    rgba[..., 3] = 255
    rgba[0, 0, 3], rgba[1, 1, 3] = 0, 102
    Image.fromarray(rgba, "RGBA").save(path)


class Keep:
    """An output node that keeps the IMAGE and MASK it is given."""

    RETURN_TYPES = ()
    FUNCTION = "keep"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "mask": ("MASK",)}}

    def keep(self, image, mask):
        return {"ui": {"shapes": [tuple(image.shape), tuple(mask.shape)]}}


def test_load_image_gives_rgb_and_one_minus_alpha(tmp_path):
    (tmp_path / "input").mkdir()
    write_rgba(tmp_path / "input" / "cat.png")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
                "2": {"class_type": "Keep", "inputs": {"image": ["1", 0], "mask": ["1", 1]}}}
    result = run_workflow(workflow, {"Keep": Keep}, input_dir=tmp_path / "input", output_dir=tmp_path / "out")
    image, mask = result.outputs["1"]
    assert image.dtype == torch.float32 and image.shape == (1, 5, 4, 3)
    assert torch.allclose(image[0, 2, 2], torch.tensor([1.0, 0.2, 0.0]))
    assert mask.shape == (1, 5, 4) and mask[0, 0, 0] == 1 and mask[0, 2, 2] == 0
    assert mask[0, 1, 1] == pytest.approx(0.6)


def test_load_image_without_alpha_gives_an_empty_64px_mask(tmp_path):
    Image.new("RGB", (3, 2), (0, 0, 255)).save(tmp_path / "blue.jpg")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "blue.jpg"}},
                "2": {"class_type": "Keep", "inputs": {"image": ["1", 0], "mask": ["1", 1]}}}
    result = run_workflow(workflow, {"Keep": Keep}, input_dir=tmp_path, output_dir=tmp_path / "out")
    assert result.ui["2"]["shapes"] == [(1, 2, 3, 3), (1, 64, 64)]
    assert not result.outputs["1"][1].any()


def test_load_image_of_a_missing_file_names_the_input_folder(tmp_path):
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "dog.png"}},
                "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(EditError, match="node 1 \\(LoadImage\\) › image") as err:
        run_workflow(workflow, {}, input_dir=tmp_path, output_dir=tmp_path / "out")
    assert str(tmp_path) in str(err.value) and "'dog.png'" in str(err.value)


class Constant:
    """Outputs the IMAGE batch set on the class."""

    images = torch.zeros(1, 1, 1, 3)
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def make(self):
        return (self.images,)


@pytest.mark.parametrize(
    ("shape", "output", "expected"),
    [
        ((0, 4, 4, 3), "SaveImage", "node 2 › Save Image › images] The batch is empty"),
        ((1, 0, 0, 3), "SaveImage", "node 2 › Save Image › images] The images have no pixels (shape (1, 0, 0, 3))"),
        ((2, 4, 0, 3), "PreviewImage", "node 2 › Preview Image › images] The images have no pixels"),
        ((4, 4, 3), "PreviewImage", "node 2 › Preview Image › images] Expected an IMAGE [B,H,W,C], got shape (4,"),
    ],
)
def test_saving_an_empty_batch_or_image_says_so(tmp_path, shape, output, expected):
    class Empty(Constant):
        images = torch.zeros(shape)

    workflow = {"1": {"class_type": "Empty", "inputs": {}},
                "2": {"class_type": output, "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(EditError) as err:
        run_workflow(workflow, {"Empty": Empty}, output_dir=tmp_path)
    assert str(err.value).startswith(f"[workflow › {expected}")
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("shape", [(0, 4, 4), (1, 0, 5), (5,)])
def test_mask_to_image_refuses_an_empty_or_shapeless_mask(shape):
    with pytest.raises(EditError, match="Mask To Image › mask"):
        IO_NODE_CLASSES["MaskToImage"]().mask_to_image(torch.zeros(shape))


def test_mask_to_image_shows_a_mask_as_grey():
    image = IO_NODE_CLASSES["MaskToImage"]().mask_to_image(torch.tensor([[0.0, 1.0]]))[0]
    assert image.shape == (1, 1, 2, 3) and image[0, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_save_image_writes_numbered_pngs_that_round_trip(tmp_path):
    images = torch.randint(0, 256, (2, 6, 5, 3)).float() / 255
    made = {"1": {"class_type": "Make", "inputs": {}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "edits/cat"}}}

    class Make(Constant):
        pass

    Make.images = images
    first = run_workflow(made, {"Make": Make}, output_dir=tmp_path)
    second = run_workflow(made, {"Make": Make}, output_dir=tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in first.files + second.files]
    assert names == [f"edits/cat_0000{i}_.png" for i in (1, 2, 3, 4)]
    for i, path in enumerate(first.files):
        with Image.open(path) as png:
            assert json.loads(png.text["prompt"])["2"]["class_type"] == "SaveImage"
            assert torch.equal(torch.from_numpy(np.array(png.convert("RGB"))).float() / 255, images[i])


def test_load_then_save_and_preview(tmp_path):
    write_rgba(tmp_path / "cat.png")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ComfyUI"}},
                "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = run_workflow(workflow, {}, input_dir=tmp_path, output_dir=tmp_path / "out")
    out = tmp_path / "out"
    assert result.files == [out / "ComfyUI_00001_.png", out / "temp" / "ComfyUI_temp_00001_.png"]
    assert all(path.is_file() for path in result.files)


def test_io_nodes_are_classic_v1_nodes():
    for name, cls in IO_NODE_CLASSES.items():
        assert callable(getattr(cls(), cls.FUNCTION)) and isinstance(cls.RETURN_TYPES, tuple) and cls.CATEGORY
        for spec in cls.INPUT_TYPES()["required"].values():
            assert spec[1]["tooltip"]
    assert IO_NODE_CLASSES["SaveImage"].OUTPUT_NODE and IO_NODE_CLASSES["PreviewImage"].OUTPUT_NODE


# --- command line -------------------------------------------------------------------------


def load_save_ui():
    load = ui_node(1, "LoadImage", ["cat.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    save = ui_node(2, "SaveImage", ["run"], inputs=[("images", "IMAGE", 1)])
    return ui_workflow([load, save], [(1, 1, 0, 2, 0, "IMAGE")])


def test_cli_runs_a_workflow_and_prints_the_files(tmp_path, capsys):
    (tmp_path / "input").mkdir()
    write_rgba(tmp_path / "input" / "cat.png")
    (tmp_path / "flow.json").write_text(json.dumps(load_save_ui()))
    code = main(["run", str(tmp_path / "flow.json"), "--output-dir", str(tmp_path / "out")], node_classes={})
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "run_00001_.png")


def _write(path, data):
    path.write_text(json.dumps(data))


def _file_case(change):
    """Writes flow.json: the LoadImage → SaveImage workflow changed by ``change``."""
    def write(folder):
        ui = load_save_ui()
        change(ui)
        _write(folder / "flow.json", ui)
    return write


def _api_case(images):
    """Writes flow.json in API format, SaveImage's images set to ``images``."""
    return lambda folder: _write(folder / "flow.json", {
        "1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": "x"}}})


def _picture_case(content):
    """Writes flow.json reading cat.png, and cat.png holding ``content``."""
    def write(folder):
        (folder / "input" / "cat.png").write_bytes(content)
        _write(folder / "flow.json", load_save_ui())
    return write


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda folder: (folder / "flow.json").mkdir(), "] It is a folder, not a workflow file: /"),
        (_file_case(lambda ui: ui.update(nodes=[1, 2])), " › nodes[0]] The entry is a number (1)"),
        (_file_case(lambda ui: ui["nodes"][1].pop("id")), " › nodes[1] (SaveImage)] The node has no id."),
        (_file_case(lambda ui: ui.update(links={"1": [1, 1, 0, 2, 0, "IMAGE"]})),
         " › links] 'links' is an object, not a list of links."),
        (_file_case(lambda ui: ui.update(links=[[1, 1]])), " › links[0]] The link [1, 1] is not a link"),
        (_file_case(lambda ui: ui["nodes"][1].update(inputs={"images": 1})),
         " › node 2 (SaveImage) › inputs] 'inputs' is an object, not a list of input slots."),
        (_api_case(["1", "0"]), " › node 2 (SaveImage) › images] The value ['1', '0'] is a list"),
        (_api_case(3), " › node 2 (SaveImage) › images] The input takes IMAGE from another node, "
                       "but it holds the value 3."),
        (_picture_case(b"\x89PNG\r\n\x1a\n" + bytes(20)),
         " › node 1 › Load Image › image] The file cat.png cannot be read as an image"),
        (_picture_case(b""), " › node 1 › Load Image › image] The file cat.png is empty (0 bytes)."),
    ],
    ids=["folder", "nodes of numbers", "node without id", "links an object", "short link", "inputs an object",
         "text slot", "number for IMAGE", "corrupt PNG", "empty PNG"],
)
def test_cli_names_what_is_wrong_in_a_broken_workflow(tmp_path, capsys, write, expected):
    (tmp_path / "input").mkdir()
    write_rgba(tmp_path / "input" / "cat.png")
    write(tmp_path)
    code = main(["run", str(tmp_path / "flow.json"), "--output-dir", str(tmp_path / "out")], node_classes={})
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"[workflow flow.json{expected}") and " Fix: " in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_reports_a_problem_in_one_clean_line_and_returns_2(tmp_path, capsys):
    (tmp_path / "flow.json").write_text(json.dumps(load_save_ui()))  # no cat.png beside it
    code = main(["run", str(tmp_path / "flow.json"), "--output-dir", str(tmp_path / "out")], node_classes={})
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("[workflow flow.json › node 1 (LoadImage) › image] 'cat.png' is not one of the choices")
    assert "Traceback" not in err and not (tmp_path / "out").exists()
