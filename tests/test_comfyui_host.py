"""The pack inside a real ComfyUI server on loopback.

Skipped unless UNPAIRED_EDIT_COMFYUI points at a ComfyUI checkout (and, if ComfyUI needs
another interpreter than this one, UNPAIRED_EDIT_COMFYUI_PYTHON at its python). The server
runs with a temporary --base-directory whose custom_nodes/ links to this repository.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image
from safetensors.torch import load_file

from unpaired_edit import NODE_CLASS_MAPPINGS
from unpaired_edit.core.edit_lora import EditLora, save_edit_lora
from unpaired_edit.core.generated_lora import LoraDelta, target_layers
from unpaired_edit.runner import load_workflow, run_workflow
from unpaired_edit.runner.registry import pack_node_classes

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
COMFYUI = os.environ.get("UNPAIRED_EDIT_COMFYUI")
pytestmark = pytest.mark.skipif(not COMFYUI, reason="set UNPAIRED_EDIT_COMFYUI to a ComfyUI checkout to run")
PACK = "unpaired-edit"
TINY_IP2P = "builtin/tiny-ip2p (random weights, for testing)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(url: str, body: dict):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@contextmanager
def _comfyui(base: Path, pythonpath: str = "") -> Iterator[str]:
    """A ComfyUI server on loopback for the --base-directory ``base`` (its custom_nodes/ links
    to this repository); yields its URL. The log is ``base/server.log``."""
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(REPO, target_is_directory=True)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    python = os.environ.get("UNPAIRED_EDIT_COMFYUI_PYTHON", sys.executable)
    with open(base / "server.log", "w") as log:
        proc = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                                 "--base-directory", str(base)], cwd=COMFYUI, stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(180):  # start-up takes ~10 s on 2 cores; give up after 3 minutes
                if proc.poll() is not None:
                    pytest.fail(f"ComfyUI exited at start-up:\n{(base / 'server.log').read_text()[-3000:]}")
                try:
                    _get(f"{url}/system_stats")
                    break
                except OSError:
                    time.sleep(1)
            else:
                pytest.fail("ComfyUI did not answer within 3 minutes")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    shutil.copytree(REPO / "workflows" / "input", base / "input")
    with _comfyui(base) as url:
        yield url, base


def test_pack_imports_and_nodes_are_listed(server):
    url, base = server
    info = _get(f"{url}/object_info")
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        assert node_id in info, f"{node_id} missing from /object_info"
        assert info[node_id]["python_module"] == f"custom_nodes.{PACK}"
        assert info[node_id]["category"] == cls.CATEGORY
    assert f"/extensions/{PACK}/cycle_score.js" in _get(f"{url}/extensions")
    _check_imported(base)


def _check_imported(base: Path) -> None:
    ours = [line for line in (base / "server.log").read_text().splitlines() if f"custom_nodes/{PACK}" in line]
    assert ours, "the import-times table does not list the pack"
    assert not [line for line in ours if "IMPORT FAILED" in line or "Cannot import" in line], ours


def test_the_pack_loads_beside_a_broken_torchaudio_and_the_node_that_needs_the_stack_names_it(
        tmp_path, broken_package):
    """torchaudio is optional for ComfyUI, and transformers and diffusers import it whenever it
    is installed; a build that fails to load (as the CUDA wheel beside a CPU torch does) must not
    stop the pack from registering."""
    site = broken_package("torchaudio", 'raise OSError("libtorchaudio.so: cannot open shared object file")')
    with _comfyui(tmp_path, pythonpath=str(site)) as url:
        assert set(NODE_CLASS_MAPPINGS) <= set(_get(f"{url}/object_info"))
        _check_imported(tmp_path)
        scene = {"shape": "circle", "colour": "red", "size": "large", "position": "center", "background": "sky",
                 "pixels": 16}
        api = {"1": {"class_type": "UnpairedEdit_ToyScene", "inputs": scene},
               "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "scene"}}}
        assert _finished(url, api)["status"]["status_str"] == "success"  # a node that needs no stack runs
        api["3"] = {"class_type": "UnpairedEdit_LoadEditModel", "inputs": {"model_name": TINY_IP2P}}
        api["4"] = {"class_type": "UnpairedEdit_EditImage", "inputs": {
            "edit_model": ["3", 0], "image": ["1", 0], "instruction": "make it blue", "steps": 2, "guidance": 0.0,
            "image_guidance": 0.0, "seed": 0}}
        api["2"]["inputs"]["images"] = ["4", 0]
        status = _finished(url, api)["status"]
        error = next(m[1] for m in status["messages"] if m[0] == "execution_error")
        assert error["node_type"] == "UnpairedEdit_LoadEditModel"
        assert error["exception_message"].startswith("[Load Edit Model] diffusers failed to import: OSError: "
                                                     "libtorchaudio.so: cannot open shared object file. Fix: "
                                                     "Repair or uninstall torchaudio in ComfyUI's Python")


def _finished(url: str, api: dict) -> dict:
    """POST a prompt, wait (at most 5 minutes) for it to finish and return its history entry."""
    prompt_id = _post(f"{url}/prompt", {"prompt": api, "client_id": uuid.uuid4().hex})["prompt_id"]
    for _ in range(300):
        history = _get(f"{url}/history/{prompt_id}").get(prompt_id)
        if history and history["status"].get("completed") is not None:
            return history
        time.sleep(1)
    pytest.fail("the prompt did not finish")


def _run_prompt(url: str, api: dict) -> dict:
    """The history entry of a prompt that must succeed."""
    history = _finished(url, api)
    assert history["status"]["status_str"] == "success", json.dumps(history["status"])[:3000]
    return history


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs_through_post_prompt(server, path):
    url, base = server
    api = load_workflow(path)
    for node in api.values():
        if "steps" in node["inputs"]:
            node["inputs"]["steps"] = 2
    history = _run_prompt(url, api)
    saved = [img for out in history["outputs"].values() for img in out.get("images", [])]
    expected = sum(node["class_type"] == "SaveImage" for node in api.values())
    assert len(saved) == expected
    for img in saved:
        assert (base / "output" / img["subfolder"] / img["filename"]).is_file()
    for node_id, node in api.items():  # what web/cycle_score.js shows on the node
        if node["class_type"] == "UnpairedEdit_CycleEdit":
            score = history["outputs"][node_id]["cycle_score"][0]
            assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("stem", ["toy_cycle_edit", "before_after_edit"])
def test_the_bundled_models_edit_in_comfyui_as_in_the_runner(server, tmp_path, models_dir, stem):
    """The toy workflows as shipped (the bundled unpaired editor and LoC hypernetwork, all their
    steps): ComfyUI saves the same pictures and reports the same cycle score as the headless
    runner, whose results the oracle approves (test_workflows.py)."""
    url, base = server
    path = REPO / "workflows" / f"{stem}.json"
    api = load_workflow(path)
    history = _run_prompt(url, api)
    ours = run_workflow(path, pack_node_classes(), output_dir=tmp_path)
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    assert abs(history["outputs"][cycle_id]["cycle_score"][0] - ours.outputs[cycle_id][3]) < 1e-4
    for node_id, node in api.items():
        if node["class_type"] == "SaveImage":
            theirs = _pixels(base / "output", history["outputs"][node_id]["images"][0])
            mine = _pixels(tmp_path, ours.ui[node_id]["images"][0])
            assert np.abs(theirs - mine).max() <= 1, node["inputs"]["filename_prefix"]


def test_comfyui_refuses_a_cycle_it_cannot_undo_before_running_any_node(server):
    """Cycle Edit's VALIDATE_INPUTS: ComfyUI answers POST /prompt with the node's error and
    queues nothing, so no file is written. (ComfyUI still runs outputs that do not depend on a
    refused node, by its own rule; the headless runner refuses the whole workflow.)"""
    url, base = server
    api = load_workflow(REPO / "workflows" / "toy_cycle_edit.json")
    cycle_id = next(i for i, n in api.items() if n["class_type"] == "UnpairedEdit_CycleEdit")
    api[cycle_id]["inputs"].update(instruction="make the background blue", reverse_instruction="")
    before = sorted((base / "output").rglob("*"))
    request = urllib.request.Request(f"{url}/prompt", json.dumps({"prompt": api}).encode(),
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    message = json.dumps(json.loads(caught.value.read())["node_errors"][cycle_id], ensure_ascii=False)
    assert "[Cycle Edit › reverse_instruction] Cannot invert 'make the background blue'" in message
    assert "Fix: Type the instruction that undoes it" in message
    time.sleep(2)
    assert sorted((base / "output").rglob("*")) == before


def _pixels(root: Path, entry: dict) -> np.ndarray:
    return np.asarray(Image.open(root / entry["subfolder"] / entry["filename"]), np.int16)


KEYS_IN_COMFYUI = """
import json, sys, torch
import comfy.options
comfy.options.enable_args_parsing()
import comfy.model_detection, comfy.utils
from diffusers import UNet2DConditionModel
with torch.device("meta"):
    unet = UNet2DConditionModel(cross_attention_dim=768)  # SD 1.x
config = comfy.model_detection.unet_config_from_diffusers_unet(unet.state_dict())
# the names comfy.lora.model_lora_keys_unet accepts for this UNet's kohya-style LoRAs
names = ["lora_unet_" + k[:-len(".weight")].replace(".", "_")
         for k in comfy.utils.unet_to_diffusers(config) if k.endswith(".weight")]
print(json.dumps(names))
"""


def test_an_edit_lora_for_an_sd1_ip2p_unet_has_key_names_comfyuis_lora_loader_maps(tmp_path):
    with torch.device("meta"):
        unet = UNet2DConditionModel(in_channels=8, cross_attention_dim=768)  # InstructPix2Pix on SD 1.5
    layers = target_layers(unet)
    delta = LoraDelta({n: torch.zeros(1, 4, m.in_features) for n, m in layers.items()},
                      {n: torch.zeros(1, m.out_features, 4) for n, m in layers.items()})
    path = save_edit_lora(EditLora(delta, "ip2p", "0" * 16), tmp_path / "edit.safetensors")
    python = os.environ.get("UNPAIRED_EDIT_COMFYUI_PYTHON", sys.executable)
    out = subprocess.run([python, "-c", KEYS_IN_COMFYUI, "--cpu"], cwd=COMFYUI, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    comfy_names = set(json.loads(out.stdout.strip().splitlines()[-1]))
    ours = {key.rsplit(".lora_", 1)[0].removesuffix(".alpha") for key in load_file(path)}
    assert len(ours) == len(layers) == 128
    assert ours <= comfy_names, sorted(ours - comfy_names)[:5]
