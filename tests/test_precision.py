"""Half precision: a model keeps its fingerprint when cast (Load Edit Model casts to fp16 or
bf16 on a GPU), and the runner's --dtype runs a workflow in bf16 on the CPU."""

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired_edit.core.adapters import add_lora, load_adapter, save_adapter
from unpaired_edit.core.edit_lora import EditLora
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.generated_lora import LoraDelta, target_layers
from unpaired_edit.core.loc import load_hypernetwork
from unpaired_edit.core.model_files import load_model
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.toy.edits import as_edit
from unpaired_edit.core.toy.oracle import score_edit
from unpaired_edit.core.builtin import WEIGHTS
from unpaired_edit.nodes.toy import ToyScene
from unpaired_edit.runner import load_workflow
from unpaired_edit.runner.cli import main

HALF = [torch.bfloat16, torch.float16]
WORKFLOW = WEIGHTS.parent / "workflows" / "before_after_edit.json"


def _edit_lora(model) -> EditLora:
    layers = target_layers(model.unet)
    delta = LoraDelta({n: torch.randn(1, 4, m.in_features) for n, m in layers.items()},
                      {n: torch.randn(1, m.out_features, 4) for n, m in layers.items()})
    return EditLora(delta, model.family, model.base_hash(), model.info.name)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_an_edit_lora_fits_its_model_cast_to_half_precision_and_no_other(dtype):
    lora = _edit_lora(build_toy(seed=0))
    same = build_toy(seed=0).to(dtype=dtype)
    assert same.dtype == dtype
    lora.check_fits(same, "Apply Edit LoRA › edit_lora")
    with pytest.raises(EditError, match=r"Apply Edit LoRA › edit_lora.*made for"):
        lora.check_fits(build_toy(seed=5).to(dtype=dtype), "Apply Edit LoRA › edit_lora")


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_an_adapter_fits_its_base_cast_to_half_precision_and_no_other(dtype, tmp_path):
    trained = tiny_ip2p(seed=0)
    add_lora(trained, "edit", rank=4, target_modules=["to_q"])
    path = save_adapter(trained, "edit", tmp_path / "edit.safetensors")
    load_adapter(tiny_ip2p(seed=0).to(dtype=dtype), path)
    with pytest.raises(EditError, match="trained on base"):
        load_adapter(tiny_ip2p(seed=5).to(dtype=dtype), path)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_the_bundled_hypernetwork_fits_its_editor_in_half_precision(dtype):
    meta = load_hypernetwork(WEIGHTS / "toy-loc-16.safetensors").meta
    editor = load_model(WEIGHTS / "toy-uip2p-16.safetensors")
    assert meta["base_hash"] == editor.base_hash() == editor.to(dtype=dtype).base_hash()


def test_the_fingerprint_is_of_the_weights_as_loaded():
    """Cast and cast back: the fingerprint stays the one of the weights before any rounding."""
    model = build_toy(seed=0)
    loaded = model.base_hash()
    assert model.to(dtype=torch.bfloat16).to(dtype=torch.float16).to(dtype=torch.float32).base_hash() == loaded
    assert build_toy(seed=1).base_hash() != loaded


def test_the_before_after_workflow_runs_in_bf16_on_the_cpu(tmp_path, models_dir):
    """`run --dtype bf16`: the shipped LoRA-of-Change workflow, end to end in bfloat16, saves
    pictures within a few levels of the float32 run's, and the oracle still approves the edit."""
    pictures = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / dtype
        assert main(["run", str(WORKFLOW), "--dtype", dtype, "--output-dir", str(out)]) == 0
        pictures[dtype] = {name: np.asarray(Image.open(next(out.rglob(f"{name}_*.png"))), dtype=np.float32) / 255
                           for name in ("lora_edited", "lora_reconstruction")}
    # Measured: bf16 differs from fp32 by at most 0.005 (edit) and 0.026 (reconstruction).
    for name, fp32 in pictures["fp32"].items():
        difference = np.abs(pictures["bf16"][name] - fp32)
        assert difference.max() < 0.06 and difference.mean() < 0.01, name
    assert np.abs(pictures["bf16"]["lora_reconstruction"] - pictures["fp32"]["lora_reconstruction"]).max() > 0
    api = load_workflow(WORKFLOW)
    cycle = next(n for n in api.values() if n["class_type"] == "UnpairedEdit_CycleEdit")
    scene = ToyScene.scene(**api[cycle["inputs"]["image"][0]]["inputs"])
    edited = torch.from_numpy(pictures["bf16"]["lora_edited"]).permute(2, 0, 1) * 2 - 1
    scores = score_edit(edited, as_edit(scene, "make the red circle blue"))
    assert scores["success"] == 1.0 and scores["preservation"] < 0.05, scores
