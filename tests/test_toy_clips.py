"""Toy clips: splits, captions, edits of every frame, changes of path, and the clip oracle."""

import random

import pytest
import torch

from unpaired_edit.core.toy.clips import (REACH, Clip, clip_applicable, flicker, make_clip_edit, sample_clip,
                                          sample_clip_edit, score_clip, split_clip_edits)
from unpaired_edit.core.toy.datasets import ClipDataset, ClipEditDataset
from unpaired_edit.core.toy.edits import KINDS
from unpaired_edit.core.toy.render import render
from unpaired_edit.core.toy.world import POSITIONS, Obj, Scene


def test_a_clip_glides_half_way_and_says_where_it_heads():
    obj = Obj("circle", "red", "large", "left")
    clip = Clip(Scene((obj,), "grass"), obj, "right")
    assert clip.caption == "a large red circle from the left to the right on a grass background"
    frames = clip.frames(5)
    assert frames[0] == clip.scene and frames[-1].objects[0].offset == pytest.approx(
        (REACH * (POSITIONS["right"][0] - POSITIONS["left"][0]), 0.0))
    video = clip.render(5, 16)
    assert video.shape == (3, 5, 16, 16) and torch.equal(video[:, 0], render(clip.scene, 16))
    assert all((video[:, i + 1] - video[:, i]).abs().sum() > 0 for i in range(4))
    still = Clip(Scene((obj,), "grass"))
    assert still.caption == "a large red circle at the left on a grass background"
    assert torch.equal(still.render(3, 16)[:, 2], render(still.scene, 16))


@pytest.mark.parametrize("split", ["validation", "test"])
def test_held_out_clip_edits_stay_in_their_split_and_cover_every_kind(split):
    edits = split_clip_edits(70, split)
    assert [e.kind for e in edits[:7]] == list(KINDS)
    assert all(e.source.split == e.target.split == split for e in edits)
    assert sum(e.source.mover is not None for e in edits) >= 15  # motion, not still pictures
    assert len({(e.source, e.target) for e in edits}) == 70


def test_training_clips_never_start_from_a_held_out_scene():
    for i in range(300):
        assert sample_clip(random.Random(i)).split == "train"
        edit = sample_clip_edit(random.Random(f"e{i}"))
        assert edit.source.split == edit.target.split == "train"


def test_a_move_of_a_gliding_object_changes_its_heading_and_keeps_the_first_frame():
    obj = Obj("square", "blue", "large", "center")
    clip = Clip(Scene((obj,), "sky"), obj, "left")
    for seed in range(20):
        edit = make_clip_edit("move", clip, random.Random(seed))
        assert edit.target.to not in ("left", "center") and edit.target.scene == clip.scene
        assert edit.reverse == "move the blue square to the left"
        assert edit.frame_edits(8, 16)[0] is None  # the clip starts where it started
    assert not clip_applicable("add", clip)  # no room along a path for a second object


def test_the_mover_keeps_gliding_after_its_colour_or_size_changes():
    obj = Obj("circle", "red", "small", "top")
    clip = Clip(Scene((obj,), "grey"), obj, "bottom")
    for kind in ("colour", "shape", "resize", "background"):
        edit = make_clip_edit(kind, clip, random.Random(0))
        assert edit.target.mover is not None and edit.target.to == "bottom"
        assert edit.target.mover in edit.target.scene.objects
    removed = make_clip_edit("remove", clip, random.Random(0))
    assert removed.target.mover is None and not removed.target.scene.objects


@pytest.mark.parametrize("frames, size", [(8, 16), (5, 24), (2, 16)])
def test_the_oracle_passes_the_true_clip_and_fails_doing_nothing(frames, size):
    edits = split_clip_edits(14, "validation")
    for edit in edits:
        truth = score_clip(edit.target.render(frames, size), edit)
        assert truth["clip_strict"] == truth["strict"] == 1.0 and truth["flicker"] == 0.0
    nothing = [score_clip(e.source.render(frames, size), e)["clip_strict"] for e in edits]
    assert sum(nothing) == 0


def test_flicker_counts_change_the_true_clip_does_not_make():
    edit = next(e for e in split_clip_edits(14, "test") if e.target.mover is not None)
    truth = edit.target.render(8, 16)
    frozen = truth[:, :1].expand_as(truth)  # the gliding object standing still
    jitter = truth + 0.2 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    assert flicker(truth, truth) == 0.0
    assert flicker(jitter, truth) > 0.05 and flicker(frozen, truth) > 0.001
    assert flicker(truth + 0.3, truth) == pytest.approx(0.0, abs=1e-6)  # a constant shift is no flicker
    assert score_clip(jitter, edit)["flicker"] == pytest.approx(flicker(jitter, truth))


def test_clip_data_sets():
    item = ClipDataset(size=16, frames=6)[3]
    assert item["video"].shape == (3, 6, 16, 16) and "background" in item["caption"]
    held = ClipEditDataset(size=16, frames=4, split="test", length=14, with_target=True)
    row = held[5]
    assert row["source"].shape == row["target"].shape == (3, 4, 16, 16)
    assert row["kind"] == KINDS[5] and row["instruction"] == held.edit(5).instruction
    assert "target" not in ClipEditDataset(size=16)[0]
