"""Registering the nodes imports none of the heavy stack, so a broken optional package (a
torchaudio build that fails to load, which transformers and diffusers import when it is
installed) cannot stop the pack from loading; the node that needs the stack names it when
it runs. Each case runs in a fresh interpreter that imports the pack as ComfyUI does."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("diffusers", "transformers", "peft", "accelerate")
TINY_IP2P = "builtin/tiny-ip2p (random weights, for testing)"

# What ComfyUI's load_custom_node does, then what the server and a prompt do with the nodes.
REGISTER_AND_RUN = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("custom_nodes_unpaired_edit", {str(REPO / "__init__.py")!r})
pack = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pack
spec.loader.exec_module(pack)
specs = {{node_id: cls.INPUT_TYPES() for node_id, cls in pack.NODE_CLASS_MAPPINGS.items()}}
heavy = [name for name in {HEAVY!r} if name in sys.modules]
nodes = pack.NODE_CLASS_MAPPINGS
image, caption = nodes["UnpairedEdit_ToyScene"]().render("circle", "red", "large", "center", "sky", 16)
try:
    nodes["UnpairedEdit_LoadEditModel"]().load({TINY_IP2P!r})
    error = None
except Exception as err:
    error = f"{{type(err).__name__}}: {{err}}"
print(json.dumps({{"nodes": sorted(specs), "heavy": heavy, "caption": caption, "error": error}}))
"""


def _register_and_run(tmp_path: Path, site: Path | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "UNPAIRED_EDIT_MODELS_DIR": str(tmp_path / "models")}
    if site is not None:  # shadows the installed packages of the same name
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", REGISTER_AND_RUN], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_registered(result: dict) -> None:
    from unpaired_edit import NODE_CLASS_MAPPINGS

    assert result["nodes"] == sorted(NODE_CLASS_MAPPINGS)
    assert result["heavy"] == [], "registering the nodes imported " + ", ".join(result["heavy"])
    assert result["caption"] == "a large red circle at the center on a sky background"  # needs no stack


def test_registering_imports_none_of_the_stack_and_loading_still_works(tmp_path):
    result = _register_and_run(tmp_path)
    _check_registered(result)
    assert result["error"] is None


def test_a_broken_torchaudio_is_named_when_a_node_needs_the_stack(tmp_path, broken_package):
    # as the CUDA torchaudio wheel beside a CPU torch fails
    site = broken_package("torchaudio", 'raise OSError("libtorchaudio.so: cannot open shared object file")')
    result = _register_and_run(tmp_path, site)
    _check_registered(result)
    assert result["error"].startswith("EditError: [Load Edit Model] ")
    assert "failed to import: OSError: libtorchaudio.so: cannot open shared object file. " in result["error"]
    assert "Fix: Repair or uninstall torchaudio in ComfyUI's Python" in result["error"]
    assert f"{sys.executable} -m pip uninstall torchaudio" in result["error"]


def test_a_broken_diffusers_is_named(tmp_path, broken_package):
    site = broken_package("diffusers", 'raise RuntimeError("diffusers is damaged")')
    result = _register_and_run(tmp_path, site)
    _check_registered(result)
    assert result["error"] == ("EditError: [Load Edit Model] diffusers failed to import: RuntimeError: diffusers is "
                               "damaged. Fix: Reinstall diffusers in ComfyUI's Python: "
                               f"{sys.executable} -m pip install --force-reinstall --no-deps diffusers, then restart.")
