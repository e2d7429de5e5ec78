"""Every workflow shipped in workflows/ runs through the headless runner and writes its images."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from unpaired_edit.core.edit_lora import load_edit_lora
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.images import comfy_to_pixels
from unpaired_edit.core.model_files import load_model
from unpaired_edit.core.toy.edits import as_edit
from unpaired_edit.core.toy.oracle import score_edit
from unpaired_edit.core.builtin import WEIGHTS
from unpaired_edit.nodes.toy import ToyScene
from unpaired_edit.nodes.edit import CycleEdit
from unpaired_edit.runner import check_workflow, load_workflow, run_workflow
from unpaired_edit.demo import main as demo_main
from unpaired_edit.runner.registry import pack_node_classes

WORKFLOWS = sorted((Path(__file__).parents[1] / "workflows").glob("*.json"))


def test_there_are_workflows_with_thumbnails():
    assert {p.name for p in WORKFLOWS} >= {"edit_image.json", "cycle_edit.json", "toy_cycle_edit.json",
                                           "before_after_edit.json"}
    for path in WORKFLOWS:
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs(path, tmp_path, models_dir):  # models_dir: where Save Edit LoRA writes
    api = load_workflow(path)
    assert any(node["class_type"].startswith("UnpairedEdit_") for node in api.values())
    result = run_workflow(path, pack_node_classes(), output_dir=tmp_path, overrides=_fast(api))
    pngs = sorted(tmp_path.rglob("*.png"))
    assert pngs and len(pngs) == len(result.files)
    height, width = _source(api, result).shape[:2]
    extend = {k: v for node in api.values() for k, v in node["inputs"].items() if k.startswith("extend_")}
    width += extend.get("extend_left", 0) + extend.get("extend_right", 0)  # outpainting widens the picture
    height += extend.get("extend_top", 0) + extend.get("extend_bottom", 0)
    for png in pngs:
        assert Image.open(png).size == (width, height)


def _source(api: dict, result) -> torch.Tensor:
    """The picture the workflow edits ([H,W,3]), whichever node made it."""
    node = next(n for n in api.values() if n["class_type"].startswith("UnpairedEdit_") and "image" in n["inputs"])
    feeder, slot = node["inputs"]["image"]
    return result.outputs[str(feeder)][slot][0]


def _fast(api: dict) -> list[str]:
    """Fewer steps keep the suite quick; everything else runs as shipped."""
    return [f"{node_id}.steps=2" for node_id, node in api.items() if "steps" in node["inputs"]]


@pytest.mark.parametrize("stem", ["cycle_edit", "toy_cycle_edit"])
def test_cycle_workflow_outputs_are_consistent(tmp_path, stem):
    path = next(p for p in WORKFLOWS if p.stem == stem)
    api = load_workflow(path)
    result = run_workflow(path, pack_node_classes(), output_dir=tmp_path, overrides=_fast(api))
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    edited, reconstruction, error, score = result.outputs[cycle_id]
    source = _source(api, result)
    measured = (reconstruction[0] - source).abs().mean(-1)
    assert torch.allclose(error[0], measured, atol=2e-2)  # the map is the reconstruction's error
    assert abs(score - (1 - error.mean().item())) < 1e-6


def test_a_cycle_it_cannot_undo_stops_before_anything_is_written(tmp_path):
    """toy_cycle_edit.json with a compound whose reverse is unknown and no reverse typed, and a
    SaveImage of the source beside it that would run first: the run ends in an error naming the
    workflow, Cycle Edit and the input to fill in, before any node runs; no file is written."""
    path = next(p for p in WORKFLOWS if p.stem == "toy_cycle_edit")
    api = load_workflow(path)
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    api["0"] = {"class_type": "SaveImage", "inputs": {"images": api[cycle_id]["inputs"]["image"],
                                                      "filename_prefix": "source"}}
    fine = {f"{cycle_id}.instruction": "make the red circle blue and bigger"}  # invertible: both branches save
    prompt, order = check_workflow(api, pack_node_classes(), overrides=fine)
    assert order.index("0") < order.index(cycle_id)
    overrides = {f"{cycle_id}.instruction": "turn the red circle into a square and make the background blue",
                 f"{cycle_id}.reverse_instruction": ""}
    with pytest.raises(EditError) as caught:
        run_workflow(api, pack_node_classes(), output_dir=tmp_path, overrides=overrides)
    assert caught.value.where == f"workflow › node {cycle_id} › Cycle Edit › reverse_instruction"
    assert caught.value.problem.startswith("Cannot invert 'turn the red circle into a square and make")
    assert "'make the background blue', the original background is unknown" in caught.value.problem
    assert "`reverse_instruction`" in caught.value.fix
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert CycleEdit.VALIDATE_INPUTS(**{k.split(".")[1]: v for k, v in fine.items()}) is True
    assert CycleEdit.VALIDATE_INPUTS("", "") is True  # blank: an edit LoRA may be the instruction


def test_the_demo_runs_the_bundled_editor_and_the_oracle_approves(tmp_path, capsys):
    """The main command as shipped: workflows/toy_cycle_edit.json on the bundled toy editor;
    the oracle says the shape changed and nothing else did, and the cycle came back."""
    assert demo_main(["--output-dir", str(tmp_path)]) == 0
    assert (tmp_path / "sheet.png").is_file() and len(list(tmp_path.rglob("*.png"))) == 4
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["strict"] == 1.0 and scores["preservation"] < 0.05 and scores["cycle_score"] > 0.9
    assert "oracle: edit right, the rest preserved" in capsys.readouterr().out


def test_the_before_after_workflow_makes_the_shown_edit_on_another_picture(tmp_path, models_dir):
    """workflows/before_after_edit.json as shipped: the bundled hypernetwork turns a pair (a red
    circle turned blue) into an edit LoRA for the bundled editor; on another red circle the
    oracle approves the edit, the negated LoRA brings the picture back, and the LoRA is saved."""
    path = next(p for p in WORKFLOWS if p.stem == "before_after_edit")
    api = load_workflow(path)
    result = run_workflow(path, pack_node_classes(), output_dir=tmp_path / "output")
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    edited, reconstruction = (comfy_to_pixels(x) for x in result.outputs[cycle_id][:2])
    image_id = api[cycle_id]["inputs"]["image"][0]
    scene = ToyScene.scene(**api[image_id]["inputs"])
    scores = score_edit(edited[0], as_edit(scene, "make the red circle blue"))
    assert scores["success"] == 1.0 and scores["preservation"] < 0.05, scores
    assert (reconstruction - comfy_to_pixels(result.outputs[image_id][0])).abs().mean() / 2 < 0.08
    saved = load_edit_lora(next(models_dir.rglob("*.safetensors")))
    assert saved.base_hash == load_model(WEIGHTS / "toy-uip2p-16.safetensors").base_hash()
