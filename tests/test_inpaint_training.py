"""The supervised inpainting baseline: a toy base becomes an inpainter and trains by masked
reconstruction; what it writes loads, inpaints in Mask Inpaint and is scored by the oracle."""

import json

import pytest
import torch
import yaml

from unpaired_edit.core.model_files import load_model
from unpaired_edit.nodes.inpaint import MaskInpaint
from unpaired_edit.training.cli import main


def _config(tmp_path, name, **overrides):
    data = {"output_dir": str(tmp_path / name), "model": "builtin/toy-base-16", "steps": 2, "batch_size": 4,
            "log_every": 1, "validate_every": 2, "data": {"size": 16}, "optim": {"warmup_steps": 1},
            "inpaint": {"validate_tasks": 6, "validate_steps": 2}, **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_two_steps_make_a_toy_inpainter_that_mask_inpaint_and_the_oracle_run(tmp_path):
    assert main(["inpaint", "--config", str(_config(tmp_path, "run"))]) == 0
    path = tmp_path / "run" / "model.safetensors"
    model = load_model(path)
    assert model.family == "toy_inpaint" and model.inpaints and model.info.method == "inpaint"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"val/fill/strict", "val/erase/l1", "val/outpaint/seam", "val/all/outside"} <= rows[-1].keys()
    assert rows[-1]["val/all/outside"] == 0.0  # nothing outside a hole changed
    image, mask = torch.rand(1, 16, 16, 3), torch.zeros(16, 16)
    mask[4:10, 4:10] = 1
    out, weights = MaskInpaint().inpaint(model, image, "a large red circle at the center", mask=mask, steps=3,
                                         guidance=0.0, image_guidance=0.0, seed=0, grow=0, feather=0, context=16,
                                         size=0, extend_left=0, extend_top=0, extend_right=0, extend_bottom=0)
    assert torch.equal(out[weights == 0], image[weights == 0]) and not torch.equal(out, image)
    json_out = tmp_path / "scores.json"
    assert main(["evaluate", "--model", str(path), "--task", "inpaint", "--n", "6", "--steps", "2",
                 "--json", str(json_out)]) == 0
    result = json.loads(json_out.read_text())["results"]
    assert set(result) == {"fill", "erase", "outpaint", "all"} and result["all"]["n"] == 6


def test_a_model_that_cannot_become_an_inpainter_is_refused_by_name(tmp_path, capsys):
    assert main(["inpaint", "--config", str(_config(tmp_path, "bad", model="builtin/tiny-ip2p"))]) == 2
    assert "'model': This ip2p model cannot be made an inpainter" in capsys.readouterr().err


def test_the_bundled_inpainter_fills_erases_and_outpaints_test_tasks_at_its_own_steps():
    """builtin/toy-inpaint-16 at the steps its file recommends, on 12 test tasks (4 of each kind)."""
    from unpaired_edit.core.builtin import load_builtin
    from unpaired_edit.core.samplers import EditSettings
    from unpaired_edit.training.evaluate import evaluate_inpainting

    model = load_builtin("builtin/toy-inpaint-16", "test")
    table, _ = evaluate_inpainting(model, 12, 16, EditSettings(model.info.steps, 1.0, 1.0, seed=0))
    assert table["all"]["strict"] >= 0.75 and table["all"]["outside"] == 0.0
