"""Every workflow shipped in workflows/ runs through the headless runner and writes its images."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired_edit.runner import load_workflow, run_workflow
from unpaired_edit.runner.registry import pack_node_classes

WORKFLOWS = sorted((Path(__file__).parents[1] / "workflows").glob("*.json"))


def test_there_are_workflows_with_thumbnails():
    assert {p.name for p in WORKFLOWS} >= {"edit_image.json", "cycle_edit.json"}
    for path in WORKFLOWS:
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs(path, tmp_path):
    api = load_workflow(path)
    assert any(node["class_type"].startswith("UnpairedEdit_") for node in api.values())
    result = run_workflow(path, pack_node_classes(), output_dir=tmp_path, overrides=_fast(api))
    pngs = sorted(tmp_path.rglob("*.png"))
    assert pngs and len(pngs) == len(result.files)
    source = Image.open(path.parent / "input" / "red_circle.png")
    for png in pngs:
        assert Image.open(png).size == source.size


def _fast(api: dict) -> list[str]:
    """Fewer steps keep the suite quick; everything else runs as shipped."""
    return [f"{node_id}.steps=2" for node_id, node in api.items() if "steps" in node["inputs"]]


def test_cycle_workflow_outputs_are_consistent(tmp_path):
    path = next(p for p in WORKFLOWS if p.stem == "cycle_edit")
    api = load_workflow(path)
    result = run_workflow(path, pack_node_classes(), output_dir=tmp_path, overrides=_fast(api))
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    edited, reconstruction, error, score = result.outputs[cycle_id]
    source = torch.from_numpy(np.array(Image.open(path.parent / "input" / "red_circle.png"))) / 255
    measured = (reconstruction[0] - source).abs().mean(-1)
    assert torch.allclose(error[0], measured, atol=2e-2)  # the map is the reconstruction's error
    assert abs(score - (1 - error.mean().item())) < 1e-6
