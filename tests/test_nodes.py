"""The nodes as ComfyUI calls them, on real tiny models, including every kind of bad input."""

import pytest
import torch

from unpaired_edit import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from unpaired_edit.core.adapters import add_lora, save_adapter
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.model_files import save_model
from unpaired_edit.core.models.tiny import tiny_ip2p
from unpaired_edit.nodes.edit import CycleEdit, EditImage
from unpaired_edit.nodes.loaders import LoadEditModel

TINY_IP2P = "builtin/tiny-ip2p (random weights, for testing)"
TINY_FLOW = "builtin/tiny-flow (random weights, for testing)"
FAST = dict(steps=3, guidance=0.0, image_guidance=0.0, seed=1)


@pytest.fixture(scope="module")
def ip2p():
    return LoadEditModel().load(TINY_IP2P)[0]


def _image(b=1, h=32, w=32, c=3):
    return torch.rand(b, h, w, c, generator=torch.Generator().manual_seed(0))


def test_registry_ids_tooltips_and_categories():
    assert set(NODE_CLASS_MAPPINGS) == set(NODE_DISPLAY_NAME_MAPPINGS)
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("UnpairedEdit_")
        assert cls.CATEGORY.startswith("unpaired_edit/")
        assert callable(getattr(cls(), cls.FUNCTION))
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (kind, opts) in spec.get(section, {}).items():
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_loader_lists_and_loads_files(models_dir):
    save_model(tiny_ip2p(), models_dir / "checkpoints" / "mine.safetensors")
    choices = LoadEditModel.INPUT_TYPES()["required"]["model_name"][0]
    assert "checkpoints/mine.safetensors" in choices and TINY_IP2P in choices
    model = LoadEditModel().load("checkpoints/mine.safetensors")[0]
    assert model.family == "ip2p"


def test_loader_errors_name_node_input_and_fix(models_dir):
    with pytest.raises(EditError, match=r"\[Load Edit Model › model_name\].*not found.*Fix:"):
        LoadEditModel().load("checkpoints/missing.safetensors")
    (models_dir / "checkpoints").mkdir()
    (models_dir / "checkpoints" / "broken.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(EditError, match=r"\[Load Edit Model › model_name\].*not a readable safetensors"):
        LoadEditModel().load("checkpoints/broken.safetensors")


def test_adapter_for_another_base_is_refused(models_dir):
    other = tiny_ip2p(seed=9)
    add_lora(other, "x", rank=2, target_modules=["to_q"])
    save_adapter(other, "x", models_dir / "loras" / "other.safetensors")
    with pytest.raises(EditError, match=r"\[Load Edit Model › adapter\].*trained on base"):
        LoadEditModel().load(TINY_IP2P, adapter="other.safetensors")


def test_edit_image_keeps_size_and_is_seeded(ip2p):
    image = _image()
    a = EditImage().edit(ip2p, image, "make it red", **FAST)[0]
    b = EditImage().edit(ip2p, image, "make it red", **FAST)[0]
    assert a.shape == image.shape and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, EditImage().edit(ip2p, image, "make it red", **{**FAST, "seed": 2})[0])


def test_sides_not_a_multiple_of_the_factor_are_handled(ip2p):
    image = _image(h=29, w=35)
    out = EditImage().edit(ip2p, image, "make it red", **FAST)[0]
    assert out.shape == image.shape


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_grey_and_alpha_inputs_are_converted(ip2p, channels):
    image = _image(c=channels)
    out = EditImage().edit(ip2p, image, "make it red", **FAST)[0]
    assert out.shape == (1, 32, 32, 3)


def test_batch_of_images(ip2p):
    images = _image(b=3)
    out = EditImage().edit(ip2p, images, "make it red", **FAST)[0]
    assert out.shape == images.shape
    assert not torch.equal(out[0], out[1])


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_instruction(ip2p, text):
    with pytest.raises(EditError, match=r"\[Edit Image › instruction\] The instruction is empty.*Fix:"):
        EditImage().edit(ip2p, _image(), text, **FAST)


def test_bad_image_and_model_inputs(ip2p):
    with pytest.raises(EditError, match=r"\[Edit Image › image\].*5 channels"):
        EditImage().edit(ip2p, _image(c=5), "make it red", **FAST)
    with pytest.raises(EditError, match=r"\[Edit Image › edit_model\]"):
        EditImage().edit("not a model", _image(), "make it red", **FAST)


def test_input_tensor_is_left_untouched(ip2p):
    image = _image()
    before = image.clone()
    CycleEdit().cycle(ip2p, image, "add a red circle", **FAST)
    assert torch.equal(image, before)


def test_cycle_edit_outputs(ip2p):
    image = _image(b=2, h=30, w=34)
    returned = CycleEdit().cycle(ip2p, image, "add a red circle", **FAST)
    edited, rec, error, score = returned["result"]
    assert returned["ui"] == {"cycle_score": [score], "reverse_instruction": ["remove the red circle"]}
    assert edited.shape == rec.shape == image.shape
    assert error.shape == (2, 30, 34) and 0 <= error.min() and error.max() <= 1
    assert isinstance(score, float) and abs(score - (1 - error.mean().item())) < 1e-5


def test_cycle_edit_needs_a_reverse_it_can_find(ip2p):
    with pytest.raises(EditError, match=r"\[Cycle Edit › reverse_instruction\].*Cannot invert"):
        CycleEdit().cycle(ip2p, _image(), "make it look nicer", **FAST)
    # the user's reverse instruction always wins
    CycleEdit().cycle(ip2p, _image(), "make it look nicer", **FAST, reverse_instruction="make it look plain")


def test_cycle_edit_refuses_a_compound_it_cannot_undo_before_sampling(ip2p):
    """One clause of the compound cannot be undone (the old background is unknown): refused,
    naming the input to fill in, before a single denoising step."""
    from unpaired_edit.core.editing import cycle_edit
    from unpaired_edit.core.images import comfy_to_pixels
    from unpaired_edit.core.samplers import EditSettings, Hooks

    steps = []
    hooks = Hooks(progress=lambda step, total, preview: steps.append(step))
    pixels, settings = comfy_to_pixels(_image()), EditSettings(steps=2, guidance=1.0)
    text = "turn the red circle into a square and make the background blue"
    with pytest.raises(EditError) as caught:
        cycle_edit(ip2p, pixels, text, "", settings, hooks)
    assert caught.value.where == "Cycle Edit › reverse_instruction"
    assert "in 'make the background blue', the original background is unknown" in caught.value.problem
    assert "`reverse_instruction`" in caught.value.fix and "`instruction`" in caught.value.fix
    assert steps == []
    cycle_edit(ip2p, pixels, text, "turn the square into a red circle", settings, hooks)  # typed: both passes run
    assert steps == [1, 2, 3, 4]


def test_cycle_edit_quotes_a_long_instruction_once_and_shortened(ip2p):
    text = "make it look nicer " + "and sharper " * 30
    with pytest.raises(EditError) as caught:
        CycleEdit().cycle(ip2p, _image(), text, **FAST)
    message = str(caught.value)
    assert message.count("make it look nicer") == 1 and "…" in message
    assert len(message) < 300 and message.count("reverse_instruction") == 2  # where, and the fix


def test_cycle_encodes_source_and_text_once(ip2p, monkeypatch):
    """Forward source, forward result and the three prompts are each encoded exactly once."""
    calls = {"vae": 0, "text": []}
    real_encode = ip2p.vae.encode
    monkeypatch.setattr(ip2p.vae, "encode", lambda x: calls.__setitem__("vae", calls["vae"] + 1) or real_encode(x))
    ip2p.text_cache.clear()
    seen = []
    hooks = [ip2p.unet.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["encoder_hidden_states"]),
                                                 with_kwargs=True),
             ip2p.text_encoder.register_forward_pre_hook(lambda m, args: calls["text"].append(args[0].shape[0]))]
    try:
        CycleEdit().cycle(ip2p, _image(), "add a red circle", **FAST)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls["vae"] == 2  # the source, then the forward result as the reverse pass's source
    assert calls["text"] == [3]  # forward, reverse and empty prompt in one batched call
    assert len(seen) == 2 * FAST["steps"]  # one UNet call per step: the guidance branches are batched
    # Every step of a pass reuses the very same text tensor (no re-encoding, no copies).
    assert all(s.data_ptr() == seen[0].data_ptr() for s in seen[: FAST["steps"]])


def test_flow_model_runs_through_the_nodes():
    flow = LoadEditModel().load(TINY_FLOW)[0]
    out = EditImage().edit(flow, _image(h=30, w=30), "add a red square", **FAST)[0]
    assert out.shape == (1, 30, 30, 3)


def test_toy_scene_renders_the_toy_world():
    from unpaired_edit.core.toy.render import render
    from unpaired_edit.core.toy.world import Obj, Scene
    from unpaired_edit.nodes.toy import ToyScene

    image, caption = ToyScene().render("square", "blue", "small", "left", "grass", 32)
    expected = render(Scene((Obj("square", "blue", "small", "left"),), "grass"), 32)
    assert image.shape == (1, 32, 32, 3) and torch.allclose(image[0].movedim(-1, 0) * 2 - 1, expected, atol=1e-6)
    assert caption == "a small blue square at the left on a grass background"


def test_a_folder_named_like_a_model_file_is_not_listed(models_dir):
    (models_dir / "checkpoints" / "folder.safetensors").mkdir(parents=True)
    save_model(tiny_ip2p(), models_dir / "checkpoints" / "sub" / "mine.safetensors")
    choices = LoadEditModel.INPUT_TYPES()["required"]["model_name"][0]
    assert [c for c in choices if c.startswith("checkpoints/")] == ["checkpoints/sub/mine.safetensors"]
    outside = models_dir.parent / "outside.safetensors"  # a real model file, but not in models/checkpoints
    save_model(tiny_ip2p(), outside)
    for name in ("folder.safetensors", f"../../{outside.name}"):  # a workflow may name anything
        with pytest.raises(EditError, match=r"\[Load Edit Model › model_name\].*not found"):
            LoadEditModel().load(f"checkpoints/{name}")


# -- NaN and inf: refused where they come in, and a result that has them is never returned ------------

NAN, INF = float("nan"), float("inf")


def _with_nan_patch(image: torch.Tensor) -> torch.Tensor:
    image = image.clone()
    image[0, 4:8, 4:8] = NAN  # 16 pixels x 3 channels
    return image


def test_a_nan_patch_in_the_image_is_refused(ip2p):
    with pytest.raises(EditError, match=r"^\[Edit Image › image\] 48 of its 3072 values are NaN or infinite.*Fix:"):
        EditImage().edit(ip2p, _with_nan_patch(_image()), "make it red", **FAST)
    image = _image()
    image[0, 0, 0, 1] = -INF
    with pytest.raises(EditError, match=r"^\[Cycle Edit › image\] 1 of its 3072 values"):
        CycleEdit().cycle(ip2p, image, "add a red circle", **FAST)


@pytest.mark.parametrize("name", ["guidance", "image_guidance"])
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_nan_or_inf_widget_values_are_refused(ip2p, name, value):
    with pytest.raises(EditError, match=rf"^\[Edit Image › {name}\] The value is {value}, not a number.*Fix: Type"):
        EditImage().edit(ip2p, _image(), "make it red", **{**FAST, name: value})
    with pytest.raises(EditError, match=rf"^\[Cycle Edit › {name}\] The value is {value}"):
        CycleEdit().cycle(ip2p, _image(), "add a red circle", **{**FAST, name: value})


def test_inf_in_a_mask_is_refused():
    """No node of the pack takes a MASK yet; any that does gets the same check by its decorator."""
    from unpaired_edit.nodes.checks import checked

    class MaskNode:
        @checked("Mask Node")
        def run(self, mask, grow: float = 0.0):
            return (mask,)

    mask = torch.zeros(1, 8, 8)
    assert MaskNode().run(mask)[0] is mask
    mask[0, 3, 3] = INF
    with pytest.raises(EditError, match=r"^\[Mask Node › mask\] 1 of its 64 values are NaN or infinite"):
        MaskNode().run(mask)
    with pytest.raises(EditError, match=r"^\[Mask Node › grow\] The value is nan"):
        MaskNode().run(torch.zeros(1, 8, 8), grow=NAN)


TOY = "builtin/toy-uip2p-16 (toy world editor, trained unpaired)"


def _nan_model(choice: str):
    """A model that outputs NaN: one weight set to NaN in memory after it loaded (the loader
    refuses a file with NaN weights; this is a model that breaks afterwards)."""
    model = LoadEditModel().load(choice)[0]
    with torch.no_grad():
        next(model.denoiser.parameters()).view(-1)[0] = NAN
    return model


@pytest.mark.parametrize("choice", [TINY_IP2P, TOY])
def test_a_model_that_outputs_nan_raises_instead_of_returning_black(choice):
    model = _nan_model(choice)
    with pytest.raises(EditError, match=r"^\[Edit Image › edit_model\] The edit came out as NaN or infinite values"
                                        r".*Fix: Start ComfyUI with --force-fp32"):
        EditImage().edit(model, _image(), "make it red", **FAST)
    with pytest.raises(EditError, match=r"^\[Cycle Edit › edit_model\] The edit came out as NaN"):
        CycleEdit().cycle(model, _image(), "add a red circle", **FAST)


class NanImage:
    """Test node: an upstream node whose picture has a NaN patch."""

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def make(self):
        return (_with_nan_patch(_image()),)


class NanModel(NanImage):
    """Test node: an edit model that broke after it loaded."""

    RETURN_TYPES = ("UNPAIRED_EDIT_MODEL",)

    def make(self):
        return (_nan_model(TINY_IP2P),)


class NanFloat(NanImage):
    """Test node: a float computed upstream (a link bypasses any widget range check)."""

    RETURN_TYPES = ("FLOAT",)

    def make(self):
        return (NAN,)


def _edit_and_save(model: str = "UnpairedEdit_LoadEditModel", image: str = "UnpairedEdit_ToyScene",
                   guidance=0.0) -> dict:
    scene = {"shape": "circle", "colour": "red", "size": "large", "position": "center", "background": "sky",
             "pixels": 32}
    workflow = {
        "1": {"class_type": model, "inputs": {"model_name": TINY_IP2P} if model.startswith("Unpaired") else {}},
        "2": {"class_type": image, "inputs": scene if image.startswith("Unpaired") else {}},
        "4": {"class_type": "UnpairedEdit_EditImage",
              "inputs": {"edit_model": ["1", 0], "image": ["2", 0], "instruction": "make it red",
                         **{**FAST, "steps": 2, "guidance": guidance}}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "edit"}},
    }
    if isinstance(guidance, list):
        workflow["3"] = {"class_type": "Test_NanFloat", "inputs": {}}
    return workflow


@pytest.mark.parametrize("workflow, message", [
    (_edit_and_save(image="Test_NanImage"), r"Edit Image › image\] 48 of its 3072 values are NaN"),
    (_edit_and_save(guidance=["3", 0]), r"Edit Image › guidance\] The value is nan"),
    (_edit_and_save(model="Test_NanModel"), r"Edit Image › edit_model\] The edit came out as NaN"),
], ids=["image", "guidance", "model"])
def test_nothing_is_saved_from_a_non_finite_value(tmp_path, workflow, message):
    from unpaired_edit.runner import run_workflow
    from unpaired_edit.runner.registry import pack_node_classes

    classes = {**pack_node_classes(), "Test_NanImage": NanImage, "Test_NanModel": NanModel, "Test_NanFloat": NanFloat}
    assert len(run_workflow(_edit_and_save(), classes, output_dir=tmp_path / "fine").files) == 1
    with pytest.raises(EditError, match=message):
        run_workflow(workflow, classes, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("shape", [(0, 16, 16, 3), (1, 0, 16, 3), (1, 16, 0, 3), (2, 0, 0, 3)])
def test_an_empty_batch_or_picture_is_refused_by_name(ip2p, shape):
    with pytest.raises(EditError, match=r"\[Edit Image › image\] The image is empty"):
        EditImage().edit(ip2p, torch.zeros(shape), "make it red", **FAST)
    with pytest.raises(EditError, match=r"\[Cycle Edit › image\] The image is empty"):
        CycleEdit().cycle(ip2p, torch.zeros(shape), "make the red circle blue", **FAST)
