"""The LoRA of Change nodes as ComfyUI calls them, on a toy editor and a hypernetwork whose
up heads have been given values (an untrained one makes no change at all)."""

import pytest
import torch

from unpaired_edit.core.editing import cycle_edit, edit_pixels
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.generated_lora import target_layers
from unpaired_edit.core.images import comfy_to_pixels
from unpaired_edit.core.loc import LocConfig, LocHypernetwork, save_hypernetwork
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.samplers import EditSettings
from unpaired_edit.nodes.edit import CycleEdit, EditImage
from unpaired_edit.nodes.loc import (BUILTIN, ApplyEditLora, BeforeAfterToLora, LoadEditLora, LoadLocHypernetwork,
                                     SaveEditLora)

SETTINGS = dict(steps=3, guidance=1.0, image_guidance=1.0, seed=4)


@pytest.fixture(scope="module")
def editor():
    return build_toy(seed=0)


@pytest.fixture
def hypernetwork(models_dir, editor):
    torch.manual_seed(0)
    targets = {n: [m.in_features, m.out_features] for n, m in target_layers(editor.unet).items()}
    network = LocHypernetwork(LocConfig(targets, width=32, blocks=2, heads=2))
    with torch.no_grad():
        for head in network.up:
            head.weight.normal_(0, 0.5)
    save_hypernetwork(network, editor, models_dir / "loc_hypernetworks" / "toy.safetensors")
    assert LoadLocHypernetwork.INPUT_TYPES()["required"]["hypernetwork_name"][0] == ["toy.safetensors", *BUILTIN]
    return LoadLocHypernetwork().load("toy.safetensors")[0]


def _pictures(b=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, size, size, 3, generator=g), torch.rand(b, size, size, 3, generator=g)


def test_a_pair_becomes_a_lora_that_edits_and_the_input_model_is_untouched(hypernetwork, editor):
    before, after = _pictures()
    lora = BeforeAfterToLora().generate(hypernetwork, before, after)[0]
    assert BeforeAfterToLora().generate(hypernetwork, before.clone(), after.clone())[0] is lora  # cached
    weights = {k: v.clone() for k, v in editor.unet.state_dict().items()}
    model = ApplyEditLora().apply(editor, lora, 1.0)[0]
    image = _pictures(seed=1)[0]
    edited = EditImage().edit(model, image, "", **SETTINGS)[0]
    plain = EditImage().edit(editor.with_edit_lora(lora.delta, 0.0), image, "", **SETTINGS)[0]
    assert (edited - plain).abs().max() > 1e-3
    assert editor.edit_loras == () and all(torch.equal(v, weights[k]) for k, v in editor.unet.state_dict().items())
    with pytest.raises(EditError, match=r"Edit Image › instruction"):
        EditImage().edit(editor, image, "", **SETTINGS)


def test_cycle_edit_undoes_a_lora_with_its_negation(hypernetwork, editor):
    lora = BeforeAfterToLora().generate(hypernetwork, *_pictures())[0]
    model = ApplyEditLora().apply(editor, lora, 1.0)[0]
    pixels = comfy_to_pixels(_pictures(seed=2)[0])
    settings = EditSettings(**SETTINGS)
    result = cycle_edit(model, pixels, "", None, settings)
    assert result.reverse_instruction == ""
    back = edit_pixels(editor.with_edit_lora(lora.delta, -1.0), result.edited, "", settings)
    torch.testing.assert_close(result.reconstruction, back)
    _, _, _, score = CycleEdit().cycle(model, _pictures(seed=2)[0], "", **SETTINGS)["result"]
    assert score == pytest.approx(result.score)


def test_a_lora_for_another_editor_is_refused(hypernetwork):
    lora = BeforeAfterToLora().generate(hypernetwork, *_pictures())[0]
    with pytest.raises(EditError, match=r"Apply Edit LoRA › edit_lora.*made for"):
        ApplyEditLora().apply(build_toy(seed=3), lora, 1.0)


def test_pairs_of_any_size_and_batches_of_pairs(hypernetwork):
    before, after = _pictures(size=16)
    big = BeforeAfterToLora().generate(hypernetwork, torch.rand(1, 40, 24, 3), after)[0]
    assert big.delta.batch == 1
    with pytest.raises(EditError, match=r"Before/After → Edit LoRA › after.*2 before picture\(s\) but 1"):
        BeforeAfterToLora().generate(hypernetwork, before.repeat(2, 1, 1, 1), after)


def test_a_batch_of_pairs_gives_the_mean_edit(hypernetwork):
    network = hypernetwork.network
    before, after = (comfy_to_pixels(p) for p in _pictures(b=3))
    with torch.no_grad():
        delta = network(before, after)
    mean = delta.mean()
    for name in delta.down:
        torch.testing.assert_close(mean.weight(name)[0], delta.weight(name).mean(0))


def test_save_and_load_round_trip_without_overwriting(hypernetwork, models_dir):
    lora = BeforeAfterToLora().generate(hypernetwork, *_pictures())[0]
    first = SaveEditLora().save(lora, "edit_lora/recolour")["ui"]["text"][0]
    second = SaveEditLora().save(lora, "edit_lora/recolour")["ui"]["text"][0]
    assert first.endswith("recolour_00001.safetensors") and second.endswith("recolour_00002.safetensors")
    names = LoadEditLora.INPUT_TYPES()["required"]["lora_name"][0]
    assert names == ["edit_lora/recolour_00001.safetensors", "edit_lora/recolour_00002.safetensors"]
    loaded = LoadEditLora().load(names[0])[0]
    assert loaded.base_hash == lora.base_hash
    for name in lora.delta.down:
        torch.testing.assert_close(loaded.delta.weight(name), lora.delta.weight(name))
    with pytest.raises(EditError, match="Save Edit LoRA › filename_prefix"):
        SaveEditLora().save(lora, "../outside")


def test_nan_or_inf_inputs_and_a_broken_hypernetwork_are_refused(hypernetwork, editor):
    before, after = _pictures(seed=7)
    lora = BeforeAfterToLora().generate(hypernetwork, before, after)[0]
    with pytest.raises(EditError, match=r"^\[Apply Edit LoRA › strength\] The value is nan.*Fix:"):
        ApplyEditLora().apply(editor, lora, float("nan"))
    after[0, 2, 2, 0] = float("inf")
    with pytest.raises(EditError, match=r"^\[Before/After → Edit LoRA › after\] 1 of its 768 values are NaN"):
        BeforeAfterToLora().generate(hypernetwork, before, after)
    with torch.no_grad():
        hypernetwork.network.up[0].weight[0, 0] = float("nan")  # broken after loading (the loader refuses NaN files)
    with pytest.raises(EditError, match=r"^\[Before/After → Edit LoRA › hypernetwork\] The edit LoRA came out with "
                                        r"\d+ NaN or infinite values"):
        BeforeAfterToLora().generate(hypernetwork, *_pictures(seed=8))
