"""Toy-world inpainting: fixed held-out tasks within their split, exact masks, a fair oracle."""

import random
from dataclasses import replace

import pytest
import torch

from unpaired_edit.core.toy.datasets import CaptionDataset, EditDataset, InpaintDataset, stack, toy_dataset
from unpaired_edit.core.toy.edits import DIFFERENT
from unpaired_edit.core.toy.inpainting import (FAITHFUL, KINDS, InpaintTask, concerned_region, sample_task,
                                               score_inpaint, split_tasks, task_mask)
from unpaired_edit.core.toy.render import object_mask, render
from unpaired_edit.core.toy.world import BACKGROUNDS, COLOURS, Obj, Scene, caption, vocabulary


def _hole(picture, task, size):
    """``picture`` inside the task's hole, the input picture elsewhere (what a stitched result is)."""
    mask = task_mask(task, size)
    return render(task.scene, size) * (1 - mask) + picture * mask


@pytest.mark.parametrize("size", [16, 32])
def test_masks_are_binary_cover_the_object_or_the_strip_and_scale(size):
    for task in split_tasks(30, "test", seed=3):
        mask = task_mask(task, size)
        assert mask.shape == (size, size) and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) == {0.0, 1.0} and torch.equal(mask, task_mask(task, size))
        rows, cols = mask.bool().any(1), mask.bool().any(0)
        assert torch.equal(mask.bool(), rows[:, None] & cols[None, :])  # a box
        if task.kind == "outpaint":
            width = round(task.extent * size)
            strip = {"left": mask[:, :width], "right": mask[:, size - width:], "top": mask[:width],
                     "bottom": mask[size - width:]}
            assert strip[task.side].all() and mask.sum() == width * size  # exactly the strip
            assert 0.25 <= task.extent <= 0.4
        else:
            body = object_mask(task.obj, size) > 0
            assert mask.bool()[body].all()  # the whole object, its soft border included
            margin = size // 16  # 1 px at 16, 2 px at 32
            for covered, inside in ((rows, body.any(1)), (cols, body.any(0))):  # the box grown by the margin
                (lo, hi), (first, last) = covered.nonzero()[[0, -1], 0], inside.nonzero()[[0, -1], 0]
                assert lo == max(0, first - margin) and hi == min(size - 1, last + margin)
    # the same share of the picture at any size
    for task in split_tasks(30, "test", seed=3):
        small, large = task_mask(task, 16), task_mask(task, 32)
        assert abs(small.mean() - large.mean()) < 0.1, task
        if task.kind == "outpaint":
            assert torch.equal(small.repeat_interleave(2, 0).repeat_interleave(2, 1), large)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_held_out_tasks_are_distinct_fixed_cycle_the_kinds_and_stay_in_their_split(split):
    tasks = split_tasks(150, split)
    assert [t.kind for t in tasks] == list(KINDS) * 50
    assert all(t.scene.split == split and (t.truth.split == split or not t.truth.objects) for t in tasks)
    assert any(not t.truth.objects for t in tasks)  # erasing a lone object leaves a bare background
    assert all(t.truth.split == split for t in tasks if t.truth.objects)
    assert len({(t.kind, t.scene.key, t.truth.key, t.side) for t in tasks}) == 150
    assert tasks == split_tasks(150, split) and tasks != split_tasks(150, split, seed=1)
    other = split_tasks(150, "validation" if split == "test" else "test")
    assert not {t.scene.key for t in tasks} & {t.scene.key for t in other}
    assert [t.kind for t in split_tasks(8, split, kinds=("erase", "fill"))] == ["erase", "fill"] * 4
    with pytest.raises(ValueError, match="split must be one of"):
        split_tasks(3, "heldout")


def test_tasks_say_what_the_hole_should_show_in_the_captions_words():
    words = set(vocabulary())
    for task in split_tasks(60, "test", seed=2) + [sample_task(random.Random(i)) for i in range(60)]:
        assert set(task.prompt.split()) <= words
        if task.kind == "fill":
            assert task.truth == task.scene and task.obj in task.scene.objects
            assert task.prompt == f"a {task.obj.size} {task.obj.colour} {task.obj.shape} at the {task.obj.position}"
            assert task.prompt in caption(task.scene)
        elif task.kind == "erase":
            assert task.truth == task.scene.replace_object(task.obj, None) and task.obj not in task.truth.objects
            assert task.prompt == f"a {task.scene.background} background" and task.prompt in caption(task.scene)
        else:
            assert task.truth == task.scene and task.obj is None and task.prompt == caption(task.scene)
            assert task.side in ("left", "right", "top", "bottom")


@pytest.mark.parametrize("size", [16, 32])
def test_the_truth_is_a_strict_success_of_every_kind(size):
    for task in split_tasks(12 if size == 16 else 6, "test", seed=4):
        truth = render(task.truth, size)
        assert score_inpaint(truth, task) == {"strict": 1.0, "success": 1.0, "preservation": 0.0, "l1": 0.0,
                                              "seam": 0.0, "outside": 0.0}, task
        grain = 0.05 * torch.randn(3, size, size, generator=torch.Generator().manual_seed(0))
        noisy = score_inpaint(truth + grain, task)  # judged on pixels, not exact equality
        assert noisy["strict"] == 1.0 and 0 < noisy["l1"] < FAITHFUL and noisy["outside"] > 0


def test_chance_pictures_are_not_strict_successes():
    """Noise in the hole, the hole in the picture's mean colour, or an erase that leaves the picture
    as it was, all fail; a flat fill is right only where the hole should show one flat colour."""
    generator, size, flat = torch.Generator().manual_seed(0), 16, []
    for task in split_tasks(90, "test", seed=1):
        given = render(task.scene, size)
        noise = _hole(torch.rand(3, size, size, generator=generator) * 2 - 1, task, size)
        assert score_inpaint(noise, task)["strict"] == 0.0, task
        if task.kind == "erase":
            assert score_inpaint(given, task)["success"] == 0.0, task
        truth = render(task.truth, size)[:, task_mask(task, size) > 0]
        if (truth - truth[:, :1]).abs().sum(0).max() <= DIFFERENT:  # the hole should show one flat colour
            flat.append(task.kind)
            continue
        assert score_inpaint(_hole(given.mean((1, 2), keepdim=True), task, size), task)["strict"] == 0.0, task
    assert set(flat) == {"erase"} and len(flat) < 30  # a fill or an outpaint always has an object to draw


def test_the_oracle_catches_the_wrong_thing_in_the_hole():
    size = 16
    tasks = split_tasks(30, "test", seed=5)
    for task in tasks:
        if task.kind == "fill":  # the object, but of another colour, shape or size
            for attribute, value in (("colour", next(c for c in COLOURS if c != task.obj.colour)),
                                     ("shape", "cross" if task.obj.shape != "cross" else "circle"),
                                     ("size", "small" if task.obj.size == "large" else "large")):
                wrong = task.truth.replace_object(task.obj, replace(task.obj, **{attribute: value}))
                if any(o.colour == value or o.shape == value for o in task.truth.objects if o != task.obj):
                    continue
                assert score_inpaint(_hole(render(wrong, size), task, size), task)["success"] == 0.0, (task, attribute)
        else:  # the hole on another background
            other = replace(task.truth, background=next(b for b in BACKGROUNDS if b != task.truth.background))
            assert score_inpaint(_hole(render(other, size), task, size), task)["success"] == 0.0, task
    # erasing the other object as well fails where it reaches into the hole
    for task in [t for t in split_tasks(90, "test", seed=6) if t.kind == "erase" and t.truth.objects]:
        both_gone = render(replace(task.truth, objects=()), size)
        reaches = ((render(task.truth, size) - both_gone).abs().sum(0) > DIFFERENT) & task_mask(task, size).bool()
        assert score_inpaint(both_gone, task)["success"] == float(not reaches.any()), task


def test_outside_preservation_seam_and_l1_measure_what_they_say():
    size = 16
    task = next(t for t in split_tasks(30, "test", seed=7) if t.kind == "fill" and t.obj.size == "small")
    truth, hole = render(task.truth, size), task_mask(task, size).bool()
    y, x = (~hole).nonzero()[0].tolist()
    touched = truth.clone()
    touched[:, y, x] += 0.4
    scores = score_inpaint(touched, task)
    assert scores["outside"] == pytest.approx(0.2) and scores["preservation"] > 0
    assert scores["l1"] == 0.0 and scores["success"] == 1.0
    assert score_inpaint(truth, task, given=touched)["outside"] == pytest.approx(0.2)  # against the picture given
    brighter = truth + 0.2 * hole  # the hole a little brighter: a jump at its border
    scores = score_inpaint(brighter, task)
    assert scores["seam"] == pytest.approx(0.1) and scores["l1"] == pytest.approx(0.1) and scores["outside"] == 0.0
    # only pixels off the object count as preservation inside the hole
    off = hole & ~concerned_region(task, size)
    assert off.any() and not (concerned_region(task, size) & ~hole).any()
    assert scores["preservation"] == pytest.approx(0.1 * off.sum().item() / (~hole | off).sum().item(), abs=1e-6)
    # a hole that is the whole picture has no border and nothing outside it
    scene = Scene((Obj("circle", "red", "large", "center"),), "sky")
    whole = InpaintTask("fill", scene, scene, "a large red circle at the center", scene.objects[0], grow=0.125)
    assert task_mask(whole, size).all()
    scores = score_inpaint(render(scene, size) + 0.2, whole)
    assert scores["seam"] == scores["outside"] == 0.0 and scores["l1"] == pytest.approx(0.1)


def test_inpaint_items_and_training_never_renders_a_held_out_scene():
    for seed in (0, 7):
        data = InpaintDataset(size=8, seed=seed)
        for i in range(1500):
            task = data.task(i)
            assert task.scene.split == task.truth.split == "train", (i, task)
        assert {data.task(i).kind for i in range(60)} == set(KINDS)
    data = InpaintDataset(size=16, seed=3)
    item, task = data[5], data.task(5)
    assert item["image"].shape == (3, 16, 16) and item["mask"].shape == (1, 16, 16)
    assert torch.equal(item["image"], render(task.truth, 16)) and torch.equal(item["mask"][0], task_mask(task, 16))
    assert item["prompt"] == task.prompt and item["kind"] == task.kind
    batch = stack([data[i] for i in range(4)])
    assert batch["mask"].shape == (4, 1, 16, 16) and len(batch["prompt"]) == 4
    held = InpaintDataset(size=8, split="validation", length=20)
    assert [held.task(i) for i in range(20)] == split_tasks(20, "validation")
    assert isinstance(toy_dataset("inpaint", 8, length=5), InpaintDataset)
    assert isinstance(toy_dataset("captions", 8), CaptionDataset) and toy_dataset("pairs", 8).with_target
    assert isinstance(toy_dataset("instructions", 8), EditDataset) and not toy_dataset("instructions", 8).with_target


@pytest.mark.parametrize("split", ["train", "test"])
def test_masked_the_truth_is_the_task_input(split):
    """What masked reconstruction trains on is, once masked, exactly what a task gives the model."""
    tasks = split_tasks(30, split) if split != "train" else [sample_task(random.Random(i), "train") for i in range(60)]
    for size in (16, 32):
        for task in tasks:
            keep = task_mask(task, size) == 0
            assert torch.equal(render(task.scene, size)[:, keep], render(task.truth, size)[:, keep]), task
