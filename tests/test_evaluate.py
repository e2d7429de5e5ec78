"""The oracle evaluation command on a (random) toy model file."""

import json

import torch

from unpaired_edit.core.model_files import save_model
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.training.cli import main


def test_evaluate_edits_and_captions(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = save_model(build_toy(), tmp_path / "toy.safetensors")
    assert main(["evaluate", "--model", str(path), "--n", "7", "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "success" in printed and "preservation" in printed and "cycle_l1" in printed
    assert sorted(tmp_path.iterdir()) == [path]  # no JSON unless asked for
    assert main(["evaluate", "--model", str(path), "--n", "7", "--steps", "2", "--json", "toy.edit.json"]) == 0
    result = json.loads((tmp_path / "toy.edit.json").read_text())
    table = result["results"]
    assert table["all"]["n"] == 7 and len(table) == 8  # seven kinds and the total
    assert 0.0 <= table["all"]["success"] <= 1.0 and table["all"]["l1"] > 0
    assert main(["evaluate", "--model", str(path), "--task", "t2i", "--n", "4", "--steps", "2",
                 "--json", str(tmp_path / "t2i.json")]) == 0
    assert json.loads((tmp_path / "t2i.json").read_text())["results"]["n"] == 4


def test_evaluate_reports_a_bad_model_path(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_batched_validation_scores_every_edit_by_its_own_instruction(tmp_path):
    from unpaired_edit.core.samplers import EditSettings
    from unpaired_edit.training.evaluate import evaluate_edits

    model, settings = build_toy(seed=2), EditSettings(2, 1.0, 1.0, seed=0)
    one, grid_one = evaluate_edits(model, 9, 16, settings, "validation", cycle=False, grid=True)
    batched, grid = evaluate_edits(model, 9, 16, settings, "validation", cycle=False, grid=True, batch=4)
    assert batched.keys() == one.keys() and batched["all"]["n"] == one["all"]["n"] == 9
    assert grid.shape == grid_one.shape == (27, 3, 16, 16)
    assert torch.equal(grid[0::3], grid_one[0::3]) and torch.equal(grid[2::3], grid_one[2::3])  # same sources, targets
    assert not torch.equal(grid[1::3], grid_one[1::3])  # the edits, from a batch's noise


def test_evaluate_clip_edits_for_picture_editors_and_video_models(tmp_path):
    from unpaired_edit.core.models.toy_video import ToyVideoModel

    image = save_model(build_toy(seed=1), tmp_path / "toy.safetensors")
    video = save_model(ToyVideoModel.from_toy(build_toy(seed=1)), tmp_path / "video.safetensors")
    tables = {}
    for name, path, how in (("independent", image, "independent"), ("video-edit", image, "video-edit"),
                            ("video", video, "video-edit")):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--model", str(path), "--task", "clip", "--n", "7", "--steps", "2", "--frames", "3",
                     "--picture-editor", how, "--json", str(out)]) == 0
        tables[name] = json.loads(out.read_text())["results"]["all"]
        assert tables[name]["n"] == 7 and {"strict", "clip_strict", "flicker", "preservation"} <= tables[name].keys()
    # frames drawn from independent noise change where the clip does not; Video Edit's shared noise and anchor
    assert tables["video-edit"]["flicker"] <= tables["independent"]["flicker"] + 1e-6
