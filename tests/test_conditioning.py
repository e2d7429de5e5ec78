"""SourceCond: the source a denoiser is conditioned on, cut, joined and dropped row by row
whatever it carries (an inpainter's mask, a time axis)."""

import pytest
import torch

from unpaired_edit.core.models import SourceCond
from unpaired_edit.core.models.tiny import tiny_flow, tiny_ip2p
from unpaired_edit.core.models.toy import build_toy


def _inpaint_video(b=3, frames=4):
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(b, 4, frames, 6, 5, generator=g)
    mask = (torch.rand(b, 1, frames, 6, 5, generator=g) > 0.5).float()
    return SourceCond(latents * (1 - mask), mask)


def test_every_operation_applies_to_each_tensor_row_by_row():
    source = _inpaint_video()
    assert source.frames == 4 and len(source) == 3 and SourceCond(torch.zeros(2, 4, 8, 8)).frames is None
    joined = SourceCond.cat([source, source[1:]])
    assert len(joined) == 5
    for name in ("latents", "mask"):
        assert torch.equal(getattr(joined, name)[3:], getattr(source, name)[1:])
    picked = source[torch.tensor([2, 0])]
    assert torch.equal(picked.mask[0], source.mask[2]) and torch.equal(picked.latents[1], source.latents[0])
    kept = source.kept(torch.tensor([True, False, True]))
    for name in ("latents", "mask"):
        assert torch.equal(getattr(kept, name)[[0, 2]], getattr(source, name)[[0, 2]])
        assert not getattr(kept, name)[1].any()
    assert not source.zeros().latents.any() and not source.zeros().mask.any()
    wide = source[:1].repeat_to(5)
    assert wide.shape == (5, 4, 4, 6, 5) and torch.equal(wide.mask[4], source.mask[0])
    assert source.to(dtype=torch.float16).mask.dtype == torch.float16


def test_a_plain_source_stays_plain():
    source = SourceCond(torch.randn(2, 3, 8, 8))
    assert source.mask is None
    assert SourceCond.cat([source, source.zeros()]).mask is None


@pytest.mark.parametrize("mask", [torch.ones(2, 2, 8, 8), torch.ones(2, 1, 4, 4), torch.ones(1, 1, 8, 8)])
def test_mismatched_parts_are_refused_with_their_shapes(mask):
    with pytest.raises(ValueError, match=r"mask must be \[2, 1, 8, 8\]"):
        SourceCond(torch.zeros(2, 4, 8, 8), mask)
    with pytest.raises(ValueError, match=r"\[B, C, h, w\]"):
        SourceCond(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="broadcast 2 sources"):
        SourceCond(torch.zeros(2, 4, 8, 8)).repeat_to(3)


@pytest.mark.parametrize("build", [build_toy, tiny_ip2p, tiny_flow], ids=["toy", "ip2p", "flow"])
def test_editors_encode_a_plain_source_and_refuse_a_mask_by_name(build):
    model = build()
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    source = model.encode_source(pixels)
    assert isinstance(source, SourceCond) and source.mask is None and len(source) == 2
    with pytest.raises(ValueError, match=f"A {model.family} model .* takes no mask"):
        model.encode_source(pixels, torch.ones(2, 1, 16, 16))


def test_an_ip2p_edit_becomes_the_unscaled_source_its_encoder_gives():
    """InstructPix2Pix reads its source unscaled, so a sampled edit (scaled latents) is divided back."""
    model = tiny_ip2p()
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        scaled_mode = model.vae.encode(pixels).latent_dist.mode() * model.vae.config.scaling_factor
        assert torch.allclose(model.as_source(scaled_mode).latents, model.encode_source(pixels).latents, atol=1e-6)
