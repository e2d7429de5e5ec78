"""Files are whole or refused: every broken model, adapter, edit LoRA and hypernetwork file is
refused when it loads, with an error that names the node's input, the problem and a fix."""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from unpaired_edit.core.adapters import add_lora, load_adapter, save_adapter
from unpaired_edit.core.edit_lora import EditLora, load_edit_lora, save_edit_lora
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.generated_lora import LoraDelta, target_layers
from unpaired_edit.core.loc import LocConfig, LocHypernetwork, load_hypernetwork, save_hypernetwork
from unpaired_edit.core.containers import META_KEY
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.core.models.toy import build_toy

WHERE = {"model": "Load Edit Model › model_name", "adapter": "Load Edit Model › adapter",
         "edit_lora": "Load Edit LoRA › lora_name", "hypernetwork": "Load LoC Hypernetwork › hypernetwork_name"}
LOAD = {"model": lambda path: load_model(path, WHERE["model"]),
        "adapter": lambda path: load_adapter(tiny_ip2p(seed=0), path, where=WHERE["adapter"]),
        "edit_lora": lambda path: load_edit_lora(path, WHERE["edit_lora"]),
        "hypernetwork": lambda path: load_hypernetwork(path, WHERE["hypernetwork"])}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """One sound file of each kind."""
    root = tmp_path_factory.mktemp("good")
    toy = build_toy(seed=0)
    ip2p = tiny_ip2p(seed=0)
    add_lora(ip2p, "edit", rank=4, target_modules=["to_q", "to_k"])
    torch.manual_seed(0)
    targets = {name: [m.in_features, m.out_features] for name, m in target_layers(toy.unet).items()}
    hypernetwork = LocHypernetwork(LocConfig(targets, width=32, blocks=2, heads=2))
    delta = LoraDelta({n: torch.randn(1, 4, i) for n, (i, _) in targets.items()},
                      {n: torch.randn(1, o, 4) for n, (_, o) in targets.items()})
    return {"model": save_model(toy, root / "model.safetensors"),
            "adapter": save_adapter(ip2p, "edit", root / "adapter.safetensors"),
            "edit_lora": save_edit_lora(EditLora(delta, "toy", toy.base_hash()), root / "edit.safetensors"),
            "hypernetwork": save_hypernetwork(hypernetwork, toy, root / "hyper.safetensors")}


def _first(tensors: dict, part: str) -> str:
    return next(k for k in sorted(tensors) if part in k)


def _drop(part):
    return lambda t: t.pop(_first(t, part))


def _reshape(part, shape):
    return lambda t: t.__setitem__(_first(t, part), torch.zeros(shape))


def _poison(part, value=float("nan")):
    def poison(tensors):
        key = _first(tensors, part)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = value
    return poison


def _extra(key, shape=(4, 4)):
    return lambda t: t.__setitem__(key, torch.zeros(shape))


def _pop(*keys):
    def pop(meta):
        for key in keys[:-1]:
            meta = meta[key]
        meta.pop(keys[-1])
    return pop


def _put(*keys, value):
    def put(meta):
        for key in keys[:-1]:
            meta = meta[key]
        meta[keys[-1]] = value
    return put


# (kind, change to the tensors, change to the metadata, what the message must say)
CASES = {
    "adapter-missing-lora_A": ("adapter", _drop("lora_A"), None, r"lacks 1 weight, the first '[^']*lora_A"),
    "adapter-missing-lora_B": ("adapter", _drop("lora_B"), None, r"lacks 1 weight, the first '[^']*lora_B"),
    "adapter-no-tensors": ("adapter", dict.clear, None, r"lacks \d+ weights"),
    "adapter-wrong-shape": ("adapter", _reshape("lora_A", (5, 32)), None, r"lora_A[^']*' of shape \[5, 32\], where \[4, 32\]"),
    "adapter-unexpected": ("adapter", _extra("mid_block.nope.lora_A.weight"), None, r"no place for.*'mid_block.nope"),
    "adapter-nan": ("adapter", _poison("lora_B"), None, r"NaN or infinite values in 1 weight tensor, the first '[^']*lora_B"),
    "adapter-no-lora": ("adapter", None, _pop("lora"), r"no 'lora' in its metadata"),
    "adapter-rank-text": ("adapter", None, _put("lora", "r", value="4"), r"lora.r = '4' in its metadata, where int"),
    "adapter-newer-setting": ("adapter", None, _put("lora", "use_dora", value=True), r"newer version.*lora.use_dora"),
    "adapter-no-base-hash": ("adapter", None, _pop("base_hash"), r"no 'base_hash' in its metadata"),
    "adapter-newer-format": ("adapter", None, _put("format_version", value=2), r"newer version of Unpaired Edit.*format 2"),
    "edit_lora-missing-up": ("edit_lora", _drop("lora_up"), None, r"lacks 1 weight, the first '[^']*lora_up"),
    "edit_lora-no-tensors": ("edit_lora", dict.clear, None, r"lacks \d+ weights"),
    "edit_lora-unexpected": ("edit_lora", _extra("lora_unet_nope.lora_down.weight"), None, r"no place for.*lora_unet_nope"),
    "edit_lora-rank-mismatch": ("edit_lora", _reshape("lora_up", (64, 3)), None, r"rank 4 down but 3 up"),
    "edit_lora-alpha-not-scalar": ("edit_lora", _reshape("alpha", (4,)), None, r"alpha' of shape \[4\], where \[\]"),
    "edit_lora-inf": ("edit_lora", _poison("lora_down", float("inf")), None, r"NaN or infinite values.*lora_down"),
    "edit_lora-no-layers": ("edit_lora", None, _pop("layers"), r"no 'layers' in its metadata"),
    "edit_lora-layers-text": ("edit_lora", None, _put("layers", value="x"), r"layers = 'x' in its metadata, where list\[str\]"),
    "edit_lora-empty-layers": ("edit_lora", None, _put("layers", value=[]), r"names no layers"),
    "edit_lora-newer-format": ("edit_lora", None, _put("format_version", value=9), r"newer version.*format 9"),
    "hypernetwork-missing": ("hypernetwork", _drop("decoder.layers.0.linear1.bias"), None, r"lacks 1 weight.*linear1.bias"),
    "hypernetwork-wrong-shape": ("hypernetwork", _reshape("fuse.weight", (3, 3)), None, r"'fuse.weight' of shape \[3, 3\], where \[32, 64\]"),
    "hypernetwork-unexpected": ("hypernetwork", _extra("extra.weight"), None, r"no place for.*'extra.weight'"),
    "hypernetwork-nan": ("hypernetwork", _poison("queries"), None, r"NaN or infinite values.*'queries'"),
    "hypernetwork-newer-setting": ("hypernetwork", None, _put("loc", "new_thing", value=1), r"made by a newer version of Unpaired Edit.*loc.new_thing"),
    "hypernetwork-rank-text": ("hypernetwork", None, _put("loc", "rank", value="4"), r"loc.rank = '4'.*where int"),
    "hypernetwork-targets-list": ("hypernetwork", None, _put("loc", "targets", value=[1, 2]), r"loc.targets = \[1, 2\]"),
    "hypernetwork-no-loc": ("hypernetwork", None, _pop("loc"), r"no 'loc' in its metadata"),
    "hypernetwork-bad-target": ("hypernetwork", None, _put("loc", "targets", value={"a": [3]}), r"settings that make no hypernetwork"),
    "hypernetwork-newer-format": ("hypernetwork", None, _put("format_version", value=2), r"newer version.*format 2"),
    "model-no-modules": ("model", None, _pop("modules"), r"no 'modules' in its metadata"),
    "model-no-info": ("model", None, _pop("info"), r"no 'info' in its metadata"),
    "model-steps-text": ("model", None, _put("info", "steps", value="20"), r"info.steps = '20'.*where int"),
    "model-guidance-bool": ("model", None, _put("info", "guidance", value=True), r"info.guidance = True.*where float"),
    "model-newer-info": ("model", None, _put("info", "sampler", value="heun"), r"newer version.*info.sampler"),
    "model-config-text": ("model", None, _put("modules", "unet", "config", value="x"), r"modules.unet.config = 'x'"),
    "model-foreign-class": ("model", None, _put("modules", "unet", "class", value="os.system"), r"'unet' that cannot be built"),
    "model-no-tokenizers": ("model", None, _pop("tokenizers"), r"no 'tokenizers' in its metadata"),
    "model-version-text": ("model", None, _put("format_version", value="1"), r"format_version = '1'.*where int"),
    "model-newer-format": ("model", None, _put("format_version", value=2), r"newer version.*format 2"),
    "model-missing-tensor": ("model", _drop("unet.conv_in.weight"), None, r"lacks 1 weight, the first 'unet.conv_in.weight'"),
    "model-extra-tensor": ("model", _extra("unet.nope"), None, r"no place for.*'unet.nope'"),
    "model-wrong-shape": ("model", _reshape("unet.conv_out.bias", (2,)), None, r"'unet.conv_out.bias' of shape \[2\], where \[3\]"),
    "model-nan": ("model", _poison("unet.conv_in.weight"), None, r"NaN or infinite values in 1 weight tensor, the first 'unet.conv_in.weight'"),
}


def _rewrite(src: Path, dst: Path, tensors_change=None, meta_change=None) -> Path:
    with safe_open(str(src), "pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
    tensors = load_file(src)
    for change, target in ((tensors_change, tensors), (meta_change, meta)):
        if change is not None:
            change(target)
    save_file(tensors, dst, metadata={META_KEY: json.dumps(meta)})
    return dst


def _refused(kind: str, path: Path) -> str:
    with pytest.raises(EditError) as caught:
        LOAD[kind](path)
    assert caught.value.where == WHERE[kind] and str(caught.value).startswith(f"[{WHERE[kind]}] '{path.name}'")
    assert caught.value.fix
    return caught.value.problem


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_broken_file_is_refused_at_load(case, good, tmp_path):
    kind, tensors_change, meta_change, says = CASES[case]
    LOAD[kind](good[kind])  # the file before the change loads
    path = _rewrite(good[kind], tmp_path / f"{case}.safetensors", tensors_change, meta_change)
    assert re.search(says, _refused(kind, path)), case


@pytest.mark.parametrize("kind", WHERE)
@pytest.mark.parametrize("content", ["empty", "truncated", "text"])
def test_a_file_that_is_no_safetensors_is_refused(kind, content, good, tmp_path):
    whole = good[kind].read_bytes()
    path = tmp_path / f"{content}.safetensors"
    path.write_bytes({"empty": b"", "truncated": whole[: len(whole) // 2], "text": b"a note, not weights"}[content])
    assert "is not a readable safetensors file" in _refused(kind, path)


def test_a_refused_adapter_leaves_the_model_as_it_was(good, tmp_path):
    model = tiny_ip2p(seed=0)
    path = _rewrite(good["adapter"], tmp_path / "half.safetensors", _drop("lora_B"))
    with pytest.raises(EditError, match="lacks 1 weight"):
        load_adapter(model, path)
    assert not getattr(model.unet, "peft_config", {})
    assert not any("lora_" in name for name in model.unet.state_dict())


def test_an_edit_lora_of_the_wrong_layer_size_is_refused_before_sampling(good, tmp_path):
    """Sizes are only known against the model: Apply Edit LoRA refuses it, Edit Image never sees it."""
    path = _rewrite(good["edit_lora"], tmp_path / "wide.safetensors", _reshape("lora_up", (67, 4)))
    lora = load_edit_lora(path)
    toy = build_toy(seed=0)
    with pytest.raises(EditError, match=r"^\[Apply Edit LoRA › edit_lora\] This edit LoRA changes layer '[^']+' "
                                        r"as \[67, \d+\], but the model has it as \[64, \d+\]"):
        lora.check_fits(toy, "Apply Edit LoRA › edit_lora")


def test_a_diffusers_folder_with_nan_weights_is_refused(tmp_path):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    model = tiny_ip2p()
    with torch.no_grad():
        model.unet.conv_out.bias[0] = float("nan")
    StableDiffusionInstructPix2PixPipeline(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                                           unet=model.unet, scheduler=model.scheduler, safety_checker=None,
                                           feature_extractor=None,
                                           requires_safety_checker=False).save_pretrained(tmp_path / "ip2p")
    with pytest.raises(EditError, match=r"\[Load Edit Model › model_name\] 'ip2p/unet' has NaN or infinite values"
                                        r".*'conv_out.bias'"):
        load_model(tmp_path / "ip2p", WHERE["model"])
