"""Video editing: chunks and their blended seams, a video model's whole-clip edit, an image model's
frame-by-frame edit from shared noise, and the bad input each refuses."""

import pytest
import torch

from unpaired_edit.core.editing import edit_pixels
from unpaired_edit.core.errors import EditError
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy_video import ToyVideoModel
from unpaired_edit.core.samplers import EditSettings
from unpaired_edit.core.toy.clips import split_clip_edits
from unpaired_edit.core.video import Chunking, chunk_starts, edit_clips, edit_frames, edit_video

SETTINGS = EditSettings(3, 1.0, 1.0, seed=2)


@pytest.fixture(scope="module")
def video_model():
    model = ToyVideoModel.from_toy(build_toy(seed=3))
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "temp_" in name or name.startswith("transformer_in") or name == "conv_in.weight":
                p.add_(0.05 * torch.randn_like(p))  # frames that see each other, and the source
    return model


def _frames(n=10):
    edit = next(e for e in split_clip_edits(7, "test") if e.source.mover is not None)
    return edit.source.render(n, 16).transpose(0, 1)  # [F, 3, H, W]


@pytest.mark.parametrize("n, size, overlap, expected", [(10, 4, 1, [0, 3, 6]), (11, 4, 1, [0, 3, 6, 7]),
                                                        (5, 8, 2, [0]), (9, 3, 0, [0, 3, 6])])
def test_chunks_cover_every_frame_and_end_at_the_last(n, size, overlap, expected):
    starts = chunk_starts(n, Chunking(size, overlap))
    assert starts == expected and starts[-1] + min(size, n) == n


def test_one_chunk_is_the_whole_clip_edit(video_model):
    frames = _frames(6)
    whole = edit_clips(video_model, frames.transpose(0, 1)[None], "make it red", SETTINGS)[0].transpose(0, 1)
    assert torch.allclose(edit_video(video_model, frames, "make it red", SETTINGS, Chunking(8, 2)), whole, atol=1e-6)


def test_overlapping_chunks_cross_fade_at_their_seams(video_model):
    frames = _frames(7)
    got = edit_video(video_model, frames, "make it red", SETTINGS, Chunking(4, 1))  # chunks at 0 and 3
    first, second = (edit_clips(video_model, frames[s:s + 4].transpose(0, 1)[None], "make it red", SETTINGS)[0]
                     .transpose(0, 1) for s in (0, 3))
    assert torch.allclose(got[:3], first[:3], atol=1e-6) and torch.allclose(got[4:], second[1:], atol=1e-6)
    assert torch.allclose(got[3], (first[3] + second[0]) / 2, atol=1e-6)  # one shared frame: half of each
    assert not torch.allclose(first[3], second[0], atol=1e-3)  # so the seam really blends two edits


def test_an_image_model_edits_every_frame_from_the_same_noise():
    model = build_toy(seed=1)
    still = _frames(1).expand(4, -1, -1, -1)  # a clip that never moves
    edited = edit_frames(model, still, "make the background grass", SETTINGS)
    assert all(torch.allclose(edited[0], e, atol=1e-5) for e in edited[1:])
    independent = edit_pixels(model, still, "make the background grass", SETTINGS)
    assert not torch.allclose(independent[0], independent[1], atol=1e-3)  # the batch's own noise differs
    moving = _frames(5)
    assert torch.allclose(edit_video(model, moving, "make it red", SETTINGS, Chunking(3, 1, anchor=False))[2],
                          edit_frames(model, moving[:3], "make it red", SETTINGS)[2], atol=1e-6)


def test_the_anchor_gives_what_stands_still_the_first_frame_s_edit():
    model = build_toy(seed=1)
    frames = _frames(5)
    plain = edit_video(model, frames, "make it red", SETTINGS, Chunking(5, 0, anchor=False))
    anchored = edit_video(model, frames, "make it red", SETTINGS, Chunking(5, 0, anchor=True))
    moved = (frames - frames[:1]).abs().amax(1) > 2 / 127.5
    near = torch.nn.functional.max_pool2d(moved.float()[:, None], 3, stride=1, padding=1)[:, 0] > 0
    assert moved[1:].any() and (~near[1:]).any()  # the clip has moving and still pixels
    still = (~near)[:, None].expand_as(frames)
    assert torch.equal(anchored[still], anchored[:1].expand_as(frames)[still])  # exactly the anchor's edit
    assert torch.equal(anchored[near[:, None].expand_as(frames)], plain[near[:, None].expand_as(frames)])


@pytest.mark.parametrize("frames, chunking, where, message", [
    (torch.zeros(0, 3, 16, 16), Chunking(4, 1), "frames", "no frames"),
    (torch.zeros(1, 3, 16, 16), Chunking(4, 1), "frames", "still picture"),
    ([torch.zeros(3, 16, 16), torch.zeros(3, 16, 24)], Chunking(4, 1), "frames", "share one size"),
    (torch.zeros(4, 3, 16, 16), Chunking(4, 4), "overlap", "fewer frames than a chunk"),
    (torch.zeros(4, 3, 16, 16), Chunking(1, 0), "chunk_frames", "no clip"),
])
def test_bad_clips_and_chunks_are_refused_by_name(video_model, frames, chunking, where, message):
    with pytest.raises(EditError, match=message) as caught:
        edit_video(video_model, frames, "make it red", SETTINGS, chunking)
    assert f"Video Edit › {where}" in str(caught.value)


def test_a_video_model_refuses_a_still_picture_in_the_picture_nodes(video_model):
    with pytest.raises(EditError, match="video model") as caught:
        edit_pixels(video_model, torch.zeros(1, 3, 16, 16), "make it red", SETTINGS)
    assert "Edit Image › edit_model" in str(caught.value) and "Video Edit" in str(caught.value)
