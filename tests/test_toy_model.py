"""The toy family: its time convention, the exact text-to-image mode, sampling and files."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from unpaired_edit.core.conventions import add_noise, x0_from_velocity
from unpaired_edit.core.editing import edit_pixels
from unpaired_edit.core.containers import read_metadata
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy import sample_toy
from unpaired_edit.core.samplers import EditSettings, Hooks
from unpaired_edit.core.toy.render import render
from unpaired_edit.core.toy.world import Obj, Scene, caption

SCENE = Scene((Obj("circle", "red", "large", "center"),), "grey")


def test_predict_is_a_velocity_in_the_flow_convention():
    model = build_toy()
    x0, eps, t = render(SCENE, 16)[None], torch.randn(1, 3, 16, 16), torch.tensor([0.3])
    text = model.encode_text([caption(SCENE)])
    with torch.no_grad():
        v = model.predict(add_noise(x0, t, eps), t, text)
        direct = model.unet(torch.cat([add_noise(x0, t, eps), torch.zeros_like(x0)], 1), t * 1000,
                            encoder_hidden_states=text.embeds).sample
    assert torch.equal(v, direct)
    # a perfect model (v = eps - x0) gives x0 back
    assert torch.allclose(x0_from_velocity(add_noise(x0, t, eps), t, eps - x0), x0, atol=1e-6)


def test_untrained_source_channels_leave_text_to_image_exact():
    model = build_toy()
    x, t, text = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 0.5]), model.encode_text(["make it red"])
    with torch.no_grad():
        assert torch.equal(model.predict(x, t, text, SourceCond(torch.randn(2, 3, 16, 16))), model.predict(x, t, text, None))
        model.unet.conv_in.weight[:, 3:].normal_()
        assert not torch.equal(model.predict(x, t, text, SourceCond(torch.randn(2, 3, 16, 16))), model.predict(x, t, text, None))


def test_text_embeddings_carry_gradients_and_the_cache_does_not():
    model = build_toy()
    assert model.text_embeddings(["a red circle"]).embeds.requires_grad
    assert not model.encode_text(["a red circle"]).embeds.requires_grad


def test_edit_and_text_to_image_sampling_with_guidance_branches():
    model = build_toy()
    calls = []
    hook = model.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    image = render(SCENE, 16)[None]
    for guidance, image_guidance, branches in ((1.0, 1.0, 1), (3.0, 1.0, 2), (1.0, 1.5, 3), (2.0, 1.5, 3)):
        calls.clear()
        out = edit_pixels(model, image, "make the red circle blue", EditSettings(2, guidance, image_guidance, 0))
        assert out.shape == image.shape and calls == [branches] * 2
    calls.clear()
    text, empty = model.encode_text([caption(SCENE), ""]).rows()
    sample = sample_toy(model, None, text, empty, EditSettings(3, 4.0, 9.0, 0), Hooks(), shape=(2, 3, 16, 16))
    hook.remove()
    assert sample.shape == (2, 3, 16, 16) and calls == [2 * 2] * 3  # no source: image guidance means nothing


def test_toy_file_round_trip(tmp_path):
    model = build_toy(seed=3)
    loaded = load_model(save_model(model, tmp_path / "toy.safetensors"))
    assert loaded.family == "toy" and loaded.info == replace(model.info, base_hash=model.base_hash())
    image = render(SCENE, 16)[None]
    settings = EditSettings(3, 1.0, 1.0, 0)
    assert torch.equal(edit_pixels(loaded, image, "make it blue", settings),
                       edit_pixels(model, image, "make it blue", settings))


def test_the_bundled_editor_works_at_other_picture_sizes():
    """A model trained at 16x16 edits a 64x64 picture at its own size and gives it back at 64."""
    from unpaired_edit.core.toy.edits import Edit, interpret
    from unpaired_edit.core.toy.oracle import score_edit
    from unpaired_edit.nodes.loaders import LoadEditModel

    model = LoadEditModel().load("builtin/toy-uip2p-16 (toy world editor, trained unpaired)")[0]
    assert model.info.extra["image_size"] == 16
    source = Scene((Obj("circle", "red", "large", "center"),), "sky")
    instruction = "turn the red circle into a square"
    target = interpret(source, instruction)
    edited = edit_pixels(model, render(source, 64)[None], instruction, EditSettings(20, 1.0, 1.0, 0))
    assert edited.shape == (1, 3, 64, 64)
    scores = score_edit(edited[0], Edit("shape", source, target, instruction, "", target.objects[0]))
    assert scores["success"] == 1.0


def test_bundled_weights_match_their_checksums_and_say_what_they_are():
    """weights/SHA256SUMS lists every bundled file; each is a whole file (not a Git LFS pointer)
    that names its family, method and training size (the hypernetwork: the editor it serves)."""
    weights = Path(__file__).parents[1] / "weights"
    sums = dict(reversed(line.split()) for line in (weights / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {p.name for p in weights.glob("*.safetensors")}
    for name, digest in sums.items():
        assert hashlib.sha256((weights / name).read_bytes()).hexdigest() == digest, name
        meta = read_metadata(weights / name, "test")
        if meta.get("kind") == "loc_hypernetwork":  # made for the bundled default editor
            assert (meta["family"], meta["base_name"], meta["image_size"]) == ("toy", "toy-uip2p-16", 16)
            continue
        assert meta["info"]["family"] in ("toy", "toy_inpaint") and meta["info"]["method"], name
        assert meta["info"]["extra"]["image_size"] == 16, name


def test_one_instruction_per_picture_edits_each_as_its_own_instruction_would():
    model = build_toy(seed=3)
    pictures = torch.stack([render(SCENE, 16), render(Scene((Obj("square", "blue", "small", "left"),), "sand"), 16)])
    settings = EditSettings(3, 2.0, 1.5, seed=5)  # both guidance branches read the per-picture text
    instructions = ["make the red circle blue", "remove the blue square"]
    together = edit_pixels(model, pictures, instructions, settings)
    for i, instruction in enumerate(instructions):  # the batch's noise for row i, with its instruction
        assert torch.allclose(together[i], edit_pixels(model, pictures, instruction, settings)[i], atol=1e-5)
    assert not torch.allclose(together[0], edit_pixels(model, pictures, instructions[1], settings)[0], atol=1e-3)
    with pytest.raises(ValueError, match="one per picture"):
        edit_pixels(model, pictures, instructions * 2, settings)
