"""Mask Inpaint as ComfyUI calls it: only the grown-and-feathered mask changes, bit for bit, over
random masks, sizes and batches; edge cases; outpainting; editors confined to a mask; bad input."""

import pytest
import torch
import torch.nn.functional as F

from unpaired_edit.core.errors import EditError
from unpaired_edit.core.models import ToyInpaintModel
from unpaired_edit.core.models.tiny import tiny_inpaint
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.regions import Box, blend_weights, regions
from unpaired_edit.core.repaint import Area, plan
from unpaired_edit.nodes.edit import EditImage
from unpaired_edit.nodes.inpaint import MaskInpaint
from unpaired_edit.nodes.loaders import LoadEditModel

FAST = dict(steps=2, guidance=0.0, image_guidance=0.0, seed=1)
AREA = dict(grow=1, feather=2, context=4, size=16)
NO_EXTEND = dict(extend_left=0, extend_top=0, extend_right=0, extend_bottom=0)


@pytest.fixture(scope="module")
def inpainter():
    model = ToyInpaintModel.from_toy(build_toy(seed=2))
    with torch.no_grad():
        model.unet.conv_in.weight[:, 3:].normal_(std=0.2)  # so the mask and masked source matter
    return model


@pytest.fixture(scope="module")
def editor():
    return LoadEditModel().load("builtin/toy-uip2p-16 (toy world editor, trained unpaired)")[0]


def _run(model, image, mask, prompt="a red square", **kw):
    return MaskInpaint().inpaint(model, image, prompt, **{**FAST, **AREA, **NO_EXTEND, **kw}, mask=mask)


def _blobs(b, h, w, seed):
    """Random masks of a few separate rectangles and dots, some touching the border, some soft."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, h, w)
    for i in range(b):
        for _ in range(int(torch.randint(1, 4, (), generator=g))):
            y, x = (int(torch.randint(0, s, (), generator=g)) for s in (h, w))
            dy, dx = (int(torch.randint(1, max(2, s // 3), (), generator=g)) for s in (h, w))
            mask[i, y:y + dy, x:x + dx] = float(torch.rand((), generator=g)) * 0.5 + 0.5
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_pixels_outside_the_grown_and_feathered_mask_are_the_input_bit_for_bit(inpainter, editor, seed):
    g = torch.Generator().manual_seed(100 + seed)
    b, h, w = int(torch.randint(1, 4, (), generator=g)), *(int(v) for v in torch.randint(9, 41, (2,), generator=g))
    image = torch.rand(b, h, w, 3, generator=g)
    mask = _blobs(1 if seed % 2 else b, h, w, seed)
    model = inpainter if seed < 4 else editor
    prompt = "a red square" if seed < 4 else "make the circle blue"
    out, weights = _run(model, image, mask, prompt)
    assert out.shape == image.shape and weights.shape == (b, h, w)
    keep = weights == 0
    assert torch.equal(out[keep], image[keep])
    assert (weights[(mask.expand(b, h, w) >= 0.5)] == 1).all()  # the mask itself is repainted in full
    assert not torch.equal(out[~keep], image[~keep])  # and something was painted there


def test_an_empty_mask_returns_the_input_without_sampling(inpainter):
    broken = ToyInpaintModel.from_toy(build_toy())
    with torch.no_grad():
        broken.unet.conv_out.weight.fill_(float("nan"))  # sampling it would raise
    image = torch.rand(2, 20, 24, 3)
    out, weights = _run(broken, image, torch.zeros(20, 24))
    assert torch.equal(out, image) and not weights.any()
    with pytest.raises(EditError, match="NaN"):
        _run(broken, image, torch.ones(20, 24))


def test_a_full_mask_and_a_mask_touching_every_border(inpainter):
    image = torch.rand(1, 24, 32, 3)
    out, weights = _run(inpainter, image, torch.ones(24, 32))
    assert weights.all() and not torch.equal(out, image)
    frame = torch.zeros(24, 32)
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = 1
    out, weights = _run(inpainter, image, frame, grow=0, feather=0)
    assert torch.equal(weights[0], frame) and torch.equal(out[0][frame == 0], image[0][frame == 0])


def test_separate_regions_get_crops_of_their_own_and_near_ones_merge():
    mask = torch.zeros(1, 200, 300)
    mask[0, 10:20, 10:30] = 1
    mask[0, 150:170, 250:290] = 1
    mask[0, 20:25, 31:40] = 1  # touches the first one's context: merged with it
    todo = plan(mask, Area(grow=0, feather=0, context=8))
    boxes = [box for _, box in todo.crops]
    assert len(boxes) == 2
    assert all(box.height == box.width for box in boxes)  # square where the canvas allows
    covered = torch.zeros(200, 300, dtype=torch.bool)
    for box in boxes:
        covered[box.top:box.bottom, box.left:box.right] = True
    assert covered[mask[0] > 0].all() and covered.float().mean() < 0.1  # the cost follows the mask
    assert regions(torch.zeros(5, 5, dtype=torch.bool), 3) == []
    assert regions(torch.ones(7, 30, dtype=torch.bool), 2) == [Box(0, 0, 7, 30)]


def test_the_blend_is_one_on_the_grown_mask_and_zero_beyond_the_feather():
    mask = torch.zeros(1, 40, 40)
    mask[0, 18:22, 18:22] = 1
    weights = blend_weights(mask, grow=3, feather=6)
    grown = F.max_pool2d(mask[:, None], 7, stride=1, padding=3)[:, 0] > 0
    assert (weights[grown] == 1).all()
    reach = F.max_pool2d(mask[:, None], 2 * 9 + 1, stride=1, padding=9)[:, 0] > 0
    assert not weights[~reach].any() and ((weights > 0) & (weights < 1)).any()


def test_outpainting_extends_the_canvas_and_keeps_the_picture(inpainter):
    image = torch.rand(1, 16, 16, 3)
    out, weights = _run(inpainter, image, torch.zeros(16, 16), extend_left=8, extend_bottom=4, grow=1, feather=2)
    assert out.shape == (1, 20, 24, 3) and weights.shape == (1, 20, 24)
    inner, inner_weights = out[0, :16, 8:], weights[0, :16, 8:]
    assert torch.equal(inner[inner_weights == 0], image[0][inner_weights == 0])
    assert (weights[0, :, :8] == 1).all() and (weights[0, 16:] == 1).all()


def test_outpainting_from_what_image_pad_for_outpaint_gives(inpainter):
    """ComfyUI's ImagePadForOutpaint: the picture on a 0.5 grey canvas and a mask of 1 on the new
    border fading into the picture ((d/feather)^2 over ``feathering`` pixels): a soft mask."""
    image, pad, feathering = torch.rand(1, 16, 16, 3), 6, 4
    canvas = torch.full((1, 16, 16 + pad, 3), 0.5)
    canvas[:, :, pad:] = image
    mask = torch.ones(16, 16 + pad)
    d = torch.arange(16).float()
    mask[:, pad:] = torch.where(d < feathering, ((feathering - d) / feathering) ** 2, torch.zeros(()))[None]
    out, weights = _run(inpainter, canvas, mask, grow=0, feather=0)
    assert out.shape == canvas.shape
    assert (weights[0, :, :pad] == 1).all() and torch.equal(out[weights == 0], canvas[weights == 0])


def test_an_editor_edits_inside_the_mask_only(editor):
    from unpaired_edit.core.toy.render import render
    from unpaired_edit.core.toy.world import Obj, Scene

    scene = Scene((Obj("circle", "red", "large", "left"), Obj("square", "green", "small", "right")), "grey")
    image = (render(scene, 32) / 2 + 0.5).clamp(0, 1).movedim(0, -1)[None]
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1  # around the circle, not the square
    out, weights = MaskInpaint().inpaint(editor, image, "make the red circle blue", mask=mask, steps=20, guidance=0.0,
                                         image_guidance=0.0, seed=0, grow=0, feather=2, context=16, size=0,
                                         **NO_EXTEND)
    assert torch.equal(out[weights == 0], image[weights == 0])
    left = out[0, 8:24, 2:14]
    assert left[..., 2].mean() > left[..., 0].mean()  # the circle came out blue


def test_one_mask_for_a_batch_or_one_each(inpainter):
    image = torch.rand(3, 16, 16, 3)
    one = torch.zeros(16, 16)
    one[4:8, 4:8] = 1
    out, weights = _run(inpainter, image, one)
    assert all(torch.equal(weights[0], weights[i]) for i in range(3))
    each = torch.zeros(3, 16, 16)
    each[1, 10:14, 10:14] = 1
    out, weights = _run(inpainter, image, each)
    assert torch.equal(out[0], image[0]) and torch.equal(out[2], image[2]) and not torch.equal(out[1], image[1])


def test_a_real_inpainting_unet_runs_through_the_node():
    out, weights = _run(tiny_inpaint(), torch.rand(1, 40, 56, 3), _blobs(1, 40, 56, 3), size=32)
    assert out.shape == (1, 40, 56, 3) and weights.any()


@pytest.mark.parametrize("mask, change, message", [
    (torch.ones(16, 20), {}, r"Mask Inpaint › mask.*20x16 pixels but the image is 16x16.*Fix: Make the mask"),
    (torch.ones(2, 16, 16), {}, r"Mask Inpaint › mask.*2 masks for 3 images.*Fix: Give one mask"),
    (torch.eye(16) * 255, {}, r"Mask Inpaint › mask.*values in 0..1.*0..255.*Fix:"),
    (torch.ones(1, 16, 16, 1), {}, r"Mask Inpaint › mask.*\[batch, height, width\].*\[1, 16, 16, 1\]"),
    (torch.ones(16, 16), {"extend_right": 8190}, r"Mask Inpaint › extend_left/extend_right.*8206x16.*"
                                                 r"Fix: Extend by fewer"),
])
def test_bad_input_names_the_node_the_input_and_the_fix(inpainter, mask, change, message):
    image = torch.rand(3, 16, 16, 3)
    before = image.clone()
    with pytest.raises(EditError, match=message):
        _run(inpainter, image, mask, **change)
    assert torch.equal(image, before)


def test_a_nan_mask_and_a_non_model_are_refused(inpainter):
    mask = torch.zeros(16, 16)
    mask[3, 3] = float("nan")
    with pytest.raises(EditError, match="Mask Inpaint › mask.*NaN"):
        _run(inpainter, torch.rand(1, 16, 16, 3), mask)
    with pytest.raises(EditError, match="Mask Inpaint › edit_model.*Expected an edit model"):
        _run("a hypernetwork", torch.rand(1, 16, 16, 3), torch.ones(16, 16))


def test_edit_image_refuses_an_inpainter_and_says_where_it_goes(inpainter):
    with pytest.raises(EditError, match="Edit Image › edit_model.*inpainting model.*Fix: Use it in Mask Inpaint"):
        EditImage().edit(inpainter, torch.rand(1, 16, 16, 3), "make it red", **FAST)


def test_progress_runs_over_every_crop_and_a_stop_request_interrupts(inpainter):
    from unpaired_edit.core.repaint import repaint
    from unpaired_edit.core.samplers import EditSettings, Hooks, Interrupted

    mask = torch.zeros(1, 60, 60)
    mask[0, 2:6, 2:6] = mask[0, 50:56, 50:56] = 1
    todo = plan(mask, Area(grow=0, feather=0, context=2, size=16))
    assert len(todo.crops) == 2
    seen = []
    pixels = torch.rand(1, 3, 60, 60) * 2 - 1
    repaint(inpainter, pixels, todo, "a red square", EditSettings(3, 1.0, 1.0, 0),
            Hooks(progress=lambda step, total, preview: seen.append((step, total))))
    assert seen == [(step, 6) for step in range(1, 7)]
    with pytest.raises(Interrupted):
        repaint(inpainter, pixels, todo, "a red square", EditSettings(3, 1.0, 1.0, 0), Hooks(should_stop=lambda: True))


def test_without_a_mask_only_the_extended_border_is_painted(inpainter):
    image = torch.rand(2, 16, 16, 3)
    out, weights = _run(inpainter, image, None, extend_top=4)
    assert out.shape == (2, 20, 16, 3) and (weights[:, :4] == 1).all()
    assert torch.equal(out[:, 4:][weights[:, 4:] == 0], image[weights[:, 4:] == 0])
    same, none = _run(inpainter, image, None)
    assert torch.equal(same, image) and not none.any()
