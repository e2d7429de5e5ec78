"""The oracle evaluation command on a (random) toy model file."""

import json

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
