"""Saving and loading models and adapters, and the errors for bad files."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from unpaired_edit.core.adapters import add_lora, load_adapter, save_adapter
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.containers import read_metadata
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.tiny import tiny_flow, tiny_inpaint, tiny_ip2p


def _predict(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, src = torch.randn(1, 4, 8, 8, generator=g), SourceCond(torch.randn(1, 4, 8, 8, generator=g))
    if model.inpaints:
        src = SourceCond(src.latents, (torch.rand(1, 1, 8, 8, generator=g) > 0.5).float())
    with torch.no_grad():
        return model.predict(x, torch.tensor([0.4]), model.encode_text(["make it red"]), src)


def test_the_same_weights_give_the_same_bytes_whatever_the_hash_seed(tmp_path):
    """Python randomises set order per process; nothing of it may reach a saved file (the
    bundled weights are checked against SHA256SUMS after retraining)."""
    script = ("import sys; from unpaired_edit.core.models.toy import build_toy; "
              "from unpaired_edit.core.model_files import save_model; save_model(build_toy(seed=0), sys.argv[1])")
    digests = set()
    for seed in ("1", "2"):
        path = tmp_path / f"toy-{seed}.safetensors"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


@pytest.mark.parametrize("build", [tiny_ip2p, tiny_inpaint, lambda: tiny_flow(source_mode="same")],
                         ids=["ip2p", "inpaint", "flow"])
def test_single_file_round_trip(tmp_path, build):
    model = build()
    path = save_model(model, tmp_path / "model.safetensors")
    meta = read_metadata(path, "test")
    assert meta["kind"] == "model" and meta["info"]["family"] == model.family
    assert meta["info"]["base_hash"] == model.base_hash()
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.info == type(model.info)(**meta["info"])
    assert torch.equal(_predict(loaded), _predict(model))
    assert loaded.base_hash() == model.base_hash()
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left nothing behind
    assert path.stat().st_mode & 0o044 == 0o044  # readable by a ComfyUI running as another user


def test_diffusers_folder_loads(tmp_path):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    model = tiny_ip2p()
    pipe = StableDiffusionInstructPix2PixPipeline(vae=model.vae, text_encoder=model.text_encoder,
                                                  tokenizer=model.tokenizer, unet=model.unet,
                                                  scheduler=model.scheduler, safety_checker=None,
                                                  feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(tmp_path / "ip2p")
    loaded = load_model(tmp_path / "ip2p")
    assert loaded.family == "ip2p" and loaded.info.name == "ip2p" and loaded.info.steps == 20
    assert torch.allclose(_predict(loaded), _predict(model), atol=1e-6)


def test_inpainting_folder_loads(tmp_path):
    from diffusers import StableDiffusionInpaintPipeline

    model = tiny_inpaint()
    StableDiffusionInpaintPipeline(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                                   unet=model.unet, scheduler=model.scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False
                                   ).save_pretrained(tmp_path / "sd-inpaint")
    loaded = load_model(tmp_path / "sd-inpaint")
    assert loaded.family == "inpaint" and loaded.inpaints and loaded.info.guidance == 7.5
    assert torch.allclose(_predict(loaded), _predict(model), atol=1e-6)


def test_a_folder_may_name_diffusers_and_transformers_classes_only_and_is_never_unpickled(tmp_path):
    """model_index.json names the class of each part: another library is never imported, and a
    part whose weights are a pickle (.bin) only is refused rather than unpickled."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    model = tiny_ip2p()
    StableDiffusionInstructPix2PixPipeline(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                                           unet=model.unet, scheduler=model.scheduler, safety_checker=None,
                                           feature_extractor=None,
                                           requires_safety_checker=False).save_pretrained(tmp_path / "ip2p")
    index_file = tmp_path / "ip2p" / "model_index.json"
    index = json.loads(index_file.read_text())
    for entry, message in ((["os", "system"], "only diffusers and transformers classes are loaded, not os.system"),
                           (["diffusers", "NoSuchModel"], "diffusers has no class NoSuchModel"),
                           (None, "model_index.json has no \\[library, class\\] for it")):
        index_file.write_text(json.dumps({**index, "unet": entry}))
        with pytest.raises(EditError, match=f"Could not load 'unet' from 'ip2p' \\({message}"):
            load_model(tmp_path / "ip2p")
    index_file.write_text(json.dumps(index))
    unet = tmp_path / "ip2p" / "unet"
    torch.save(model.unet.state_dict(), unet / "diffusion_pytorch_model.bin")
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(EditError, match="Could not load 'unet' from 'ip2p'"):
        load_model(tmp_path / "ip2p")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EditError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(EditError, match="not a readable safetensors file.*Fix:"):
        load_model(bad)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(save_model(tiny_ip2p(), tmp_path / "ok.safetensors").read_bytes()[:5000])
    with pytest.raises(EditError, match="Fix:"):
        load_model(truncated)
    pickled = tmp_path / "model.ckpt"
    pickled.write_bytes(b"whatever")
    with pytest.raises(EditError, match="pickle"):
        load_model(pickled)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(EditError, match="neither an Unpaired Edit model"):
        load_model(foreign)
    (tmp_path / "folder").mkdir()
    with pytest.raises(EditError, match="model_index.json"):
        load_model(tmp_path / "folder")


def test_adapter_round_trip_and_wrong_base(tmp_path):
    model = tiny_ip2p(seed=0)
    add_lora(model, "edit", rank=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    assert torch.equal(_predict(model), _predict(tiny_ip2p(seed=0)))  # a fresh LoRA changes nothing
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    path = save_adapter(model, "edit", tmp_path / "edit.safetensors")
    fresh = tiny_ip2p(seed=0)
    load_adapter(fresh, path)
    assert torch.allclose(_predict(fresh), _predict(model), atol=1e-6)
    assert (_predict(fresh) - _predict(tiny_ip2p(seed=0))).abs().max() > 1e-4

    other = tiny_ip2p(seed=5)
    with pytest.raises(EditError, match="trained on base.*Fix: Load the adapter onto the base"):
        load_adapter(other, path)
    with pytest.raises(EditError, match="ip2p"):
        load_adapter(tiny_flow(), path)
    with pytest.raises(EditError, match="adapter"):
        load_model(path)
    assert json.loads(json.dumps(read_metadata(path, "t")))["lora"]["r"] == 4


@pytest.mark.parametrize("filename", ["half.safetensors", "edit.v2.safetensors"])
def test_an_adapter_file_of_any_name_loads(tmp_path, filename):
    """Adapters are named after their file, and peft's names may neither hold dots nor shadow
    a module attribute such as ``half``."""
    model = tiny_ip2p(seed=0)
    add_lora(model, "edit", rank=4, target_modules=["to_q"])
    path = save_adapter(model, "edit", tmp_path / filename)
    fresh = tiny_ip2p(seed=0)
    name = load_adapter(fresh, path)
    assert list(fresh.unet.peft_config) == [name]


def test_flux_kontext_folder_loads(tmp_path):
    from diffusers import FluxKontextPipeline

    model = tiny_flow()
    FluxKontextPipeline(scheduler=model.scheduler, vae=model.vae, text_encoder=model.text_encoder,
                        tokenizer=model.tokenizer, text_encoder_2=model.text_encoder_2,
                        tokenizer_2=model.tokenizer_2, transformer=model.transformer).save_pretrained(tmp_path / "kontext")
    (tmp_path / "kontext" / "unpaired_edit.json").write_text(json.dumps(model.info.to_dict()))
    loaded = load_model(tmp_path / "kontext")
    assert loaded.family == "flow" and loaded.source_mode == "offset" and loaded.info == model.info
    assert torch.allclose(_predict(loaded), _predict(model), atol=1e-6)


def test_folder_of_another_pipeline_is_refused(tmp_path):
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(EditError, match="StableDiffusionPipeline.*not an edit model.*Fix: Use one of"):
        load_model(tmp_path / "sd")
    for broken, message in (("[1, 2]", "is not a JSON object"), ("{not json", "is not a JSON object"),
                            ('{"_class_name": ["a"]}', "holds an unknown pipeline")):
        (tmp_path / "sd" / "model_index.json").write_text(broken)
        with pytest.raises(EditError, match=message):
            load_model(tmp_path / "sd")
