"""Video Edit and Toy Clip as ComfyUI calls them, and the runner's animated save."""

import pytest
import torch
from PIL import Image

from unpaired_edit.core.errors import EditError
from unpaired_edit.core.models.toy import build_toy
from unpaired_edit.core.models.toy_video import ToyVideoModel
from unpaired_edit.core.toy.clips import ClipEdit, score_clip
from unpaired_edit.nodes.toy import STILL, ToyClip
from unpaired_edit.nodes.video import VideoEdit
from unpaired_edit.runner.context import RunContext, use_context
from unpaired_edit.runner.image_nodes import SaveAnimatedWEBP

FAST = dict(steps=2, guidance=0.0, image_guidance=0.0, seed=1)


@pytest.fixture(scope="module")
def video_model():
    return ToyVideoModel.from_toy(build_toy(seed=2))


def test_toy_clip_renders_frames_the_clip_oracle_knows():
    frames, caption = ToyClip().render("square", "blue", "large", "left", "right", "grass", 6, 32)
    assert frames.shape == (6, 32, 32, 3) and 0 <= frames.min() and frames.max() <= 1
    assert caption == "a large blue square from the left to the right on a grass background"
    clip = ToyClip.clip("square", "blue", "large", "left", "right", "grass")
    assert torch.allclose(frames, (clip.render(6, 32).transpose(0, 1).permute(0, 2, 3, 1) + 1) / 2, atol=1e-6)
    still, _ = ToyClip().render("circle", "red", "small", "top", STILL, "sky", 3, 16)
    assert torch.equal(still[0], still[2])
    with pytest.raises(EditError, match=r"\[Toy Clip › heading\]"):
        ToyClip().render("circle", "red", "small", "top", "top", "sky", 3, 16)


@pytest.mark.parametrize("chunk, overlap", [(16, 4), (3, 1)])
def test_video_edit_keeps_the_frames_count_and_size(video_model, chunk, overlap):
    frames, _ = ToyClip().render("circle", "red", "large", "center", "top", "sky", 7, 24)
    before = frames.clone()
    (edited,) = VideoEdit().edit(video_model, frames, "make the red circle blue", **FAST, chunk_frames=chunk,
                                 overlap=overlap)
    assert edited.shape == frames.shape and torch.equal(frames, before)  # the input is left untouched
    again, = VideoEdit().edit(video_model, frames, "make the red circle blue", **FAST, chunk_frames=chunk,
                              overlap=overlap)
    assert torch.equal(edited, again)


def test_video_edit_with_a_picture_editor_and_the_clip_oracle(video_model):
    frames, _ = ToyClip().render("circle", "red", "large", "center", STILL, "sky", 4, 16)
    (edited,) = VideoEdit().edit(build_toy(seed=3), frames, "make the red circle blue", **FAST, chunk_frames=4,
                                 overlap=1)
    assert torch.allclose(edited[0], edited[3], atol=1e-5)  # a still clip from shared noise stays still
    clip = ToyClip.clip("circle", "red", "large", "center", STILL, "sky")
    scores = score_clip(edited.permute(3, 0, 1, 2) * 2 - 1, ClipEdit("colour", clip, clip, "x", "x"))
    assert scores["flicker"] < 1e-5


@pytest.mark.parametrize("frames, options, where", [
    (torch.zeros(1, 16, 16, 3), {}, "frames"),
    (torch.zeros(0, 16, 16, 3), {}, "frames"),
    (torch.zeros(4, 16, 16, 3), {"chunk_frames": 4, "overlap": 4}, "overlap"),
])
def test_video_edit_refuses_bad_input_by_name(video_model, frames, options, where):
    with pytest.raises(EditError, match=rf"\[Video Edit › {where}\].*Fix:"):
        VideoEdit().edit(video_model, frames, "make it red", **FAST, **{"chunk_frames": 8, "overlap": 2, **options})


def test_the_runner_saves_frames_as_one_animated_webp(tmp_path):
    frames, _ = ToyClip().render("circle", "red", "large", "left", "right", "sky", 5, 16)
    with use_context(RunContext(tmp_path, tmp_path / "out")):
        result = SaveAnimatedWEBP().save_images(frames, 4.0, "clips/toy")
    entry = result["ui"]["images"][0]
    path = tmp_path / "out" / entry["subfolder"] / entry["filename"]
    with Image.open(path) as picture:
        assert picture.n_frames == 5 and picture.size == (16, 16)


def test_video_edit_refuses_an_inpainting_model():
    frames, _ = ToyClip().render("circle", "red", "large", "left", "right", "sky", 3, 16)
    with pytest.raises(EditError, match=r"\[Video Edit › edit_model\].*inpainting model.*Fix:"):
        VideoEdit().edit(build_toy(seed=1).as_inpainter(), frames, "make it red", **FAST, chunk_frames=4, overlap=1)
