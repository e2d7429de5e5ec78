"""The inpainting families: the toy inpainter made from a toy model, files, masks, and the
edit nodes refusing a model that needs a mask."""

import pytest
import torch

from unpaired_edit.core.editing import inpaint_pixels
from unpaired_edit.core.model_files import load_model, save_model
from unpaired_edit.core.models import SourceCond, ToyInpaintModel
from unpaired_edit.core.models.tiny import tiny_inpaint
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.samplers import EditSettings


def _mask(b=2, size=16, seed=0):
    return (torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_a_toy_inpainter_starts_as_its_base_text_to_image_self():
    base = build_toy(seed=3)
    inpainter = ToyInpaintModel.from_toy(base)
    assert inpainter.family == "toy_inpaint" and inpainter.unet.config.in_channels == 7
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([0.3, 0.8])
    text = base.encode_text(["a red circle", "a blue cross"])
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        source = inpainter.encode_source(pixels, _mask())
        assert torch.allclose(inpainter.predict(x, t, text, source), base.predict(x, t, text, None), atol=1e-6)
        inpainter.unet.conv_in.weight[:, 3:].normal_()  # once the mask channels learn, they matter
        assert not torch.allclose(inpainter.predict(x, t, text, source), base.predict(x, t, text, None), atol=1e-3)
    assert base.unet.conv_in.weight.shape[1] == 6  # the base is untouched


def test_the_mask_is_binarised_and_the_masked_pixels_blanked():
    inpainter = ToyInpaintModel.from_toy(build_toy())
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8, :] = 0.5  # a soft mask paints from 0.5 up
    mask[..., 8:, :4] = 0.49
    source = inpainter.encode_source(pixels, mask)
    assert torch.equal(source.mask, (mask >= 0.5).float())
    assert not source.latents[..., :8, :].any() and torch.equal(source.latents[..., 8:, :], pixels[..., 8:, :])


@pytest.mark.parametrize("build", [lambda: ToyInpaintModel.from_toy(build_toy()), tiny_inpaint],
                         ids=["toy_inpaint", "inpaint"])
def test_an_inpainter_round_trips_through_its_file_and_needs_a_mask(tmp_path, build):
    model = build()
    with torch.no_grad():
        model.unet.conv_in.weight.normal_(std=0.1)
    loaded = load_model(save_model(model, tmp_path / "inpainter.safetensors"))
    assert type(loaded) is type(model) and loaded.inpaints
    size = 16 if model.family == "toy_inpaint" else 32
    pixels = torch.rand(2, 3, size, size) * 2 - 1
    settings = EditSettings(3, 1.0, 1.0, seed=4)
    painted = [inpaint_pixels(m, pixels, _mask(size=size), "a red square", settings) for m in (model, loaded)]
    assert painted[0].shape == pixels.shape and torch.equal(painted[0], painted[1])
    with pytest.raises(ValueError, match="needs a mask"):
        model.encode_source(pixels)
    with pytest.raises(ValueError, match="carries its mask"):
        model.as_source(torch.zeros(1, 4, 4, 4))


def test_the_text_to_image_condition_of_an_inpainter_masks_everything():
    inpainter = ToyInpaintModel.from_toy(build_toy())
    source = inpainter.no_source(torch.zeros(2, 3, 16, 16))
    assert isinstance(source, SourceCond) and source.mask.all() and not source.latents.any()
    tiny = tiny_inpaint()
    with torch.no_grad():
        full = tiny.no_source(torch.zeros(1, 4, 8, 8))
        assert full.mask.all() and torch.equal(full.latents, tiny.encode_source(torch.zeros(1, 3, 16, 16),
                                                                                torch.ones(1, 1, 16, 16)).latents)
