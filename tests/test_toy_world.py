"""The toy world: deterministic scenes and edits, exact reverse instructions, a fair oracle."""

import random
from dataclasses import replace

import pytest
import torch

from unpaired_edit.core.toy.datasets import CaptionDataset, EditDataset, stack
from unpaired_edit.core.toy.edits import (KINDS, applicable, as_edit, edit_region, interpret, make_edit, possible,
                                          split_edits, transfer_cases)
from unpaired_edit.core.toy.chance import BASELINES, chance_pictures
from unpaired_edit.core.toy.oracle import (PRESERVED, VALUES, caption_correct, classify, preserved_region, score_edit,
                                           summarize)
from unpaired_edit.core.toy.render import object_mask, render
from unpaired_edit.core.toy.world import (BACKGROUNDS, COLOURS, OPPOSITE, POSITIONS, SHAPES, SIZES, SPLITS, Obj,
                                          Scene, caption, clip, sample_scene, vocabulary)
from unpaired_edit.training.evaluate import evaluate_chance


def _edits(kind, n=25, seed=0):
    rng, out = random.Random(seed), []
    while len(out) < n:
        scene = sample_scene(rng)
        if applicable(kind, scene):
            out.append(make_edit(kind, scene, rng))
    return out


def test_same_seed_same_world_other_seed_other_world():
    a, b = EditDataset(size=16, seed=3, with_target=True), EditDataset(size=16, seed=3, with_target=True)
    for i in range(20):
        x, y = a[i], b[i]
        assert x["instruction"] == y["instruction"] and torch.equal(x["source"], y["source"])
        assert torch.equal(x["target"], y["target"])
    other = EditDataset(size=16, seed=4)
    assert [a[i]["instruction"] for i in range(20)] != [other[i]["instruction"] for i in range(20)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_edit_kind_round_trips(kind):
    for edit in _edits(kind):
        assert edit.target != edit.source
        assert interpret(edit.source, edit.instruction) == edit.target  # the instruction says what it does
        assert interpret(edit.target, edit.reverse) == edit.source  # and the reverse undoes it
        assert torch.equal(render(interpret(edit.target, edit.reverse), 16), render(edit.source, 16))
        assert as_edit(edit.source, edit.instruction, edit.reverse) == edit  # the oracle's view from words alone


def test_an_instruction_that_changes_nothing_is_not_an_edit():
    scene = _edits("colour", 1)[0].target
    obj = scene.objects[0]
    with pytest.raises(ValueError, match="does not change"):
        as_edit(scene, f"make the {obj.colour} {obj.shape} {obj.colour}")
    with pytest.raises(ValueError, match="no object"):
        as_edit(scene, "make the " + next(f"{c} {obj.shape}" for c in COLOURS if c != obj.colour) + " blue")


def test_instructions_vary_and_use_the_vocabulary():
    edits = [e for kind in KINDS for e in _edits(kind, 40)]
    words = set(vocabulary())
    for edit in edits:
        for text in (edit.instruction, edit.reverse, edit.source_caption, edit.target_caption):
            assert set(text.split()) <= words, text
    colour_phrasings = {e.instruction.split()[0] for e in _edits("colour", 40)}
    assert len(colour_phrasings) >= 3


def test_renderer_any_size_and_anti_aliased():
    scene = Scene((Obj("circle", "red", "large", "center"),), "grey")
    for size in (16, 32, 64, 33):
        image = render(scene, size)
        assert image.shape == (3, size, size) and image.min() >= -1 and image.max() <= 1
    mask = object_mask(scene.objects[0], 64)
    assert ((mask > 0) & (mask < 1)).any()  # soft edges
    assert abs(mask.mean().item() - 3.14159 * SIZES["large"] ** 2) < 0.01  # the circle's area


def test_splits_are_fixed_disjoint_and_shared_by_resized_scenes():
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(5000)]
    share = {split: sum(s.split == split for s in scenes) / len(scenes) for split in SPLITS}
    assert {Scene((), b).split for b in BACKGROUNDS} == {"train"}  # the bare backgrounds
    every = _every_scene()
    assert len(every) == 8325 and all(possible(s) for s in every)
    assert sum(len(s.objects) == 1 and s.split == "test" for s in every) >= 240  # 40 resizes and moves each
    assert 0.68 < share["train"] < 0.82 and 0.06 < share["validation"] < 0.14 and 0.11 < share["test"] < 0.19
    assert [s.split for s in scenes] == [Scene(s.objects, s.background).split for s in scenes]  # a pure function
    for scene in scenes:
        for obj in scene.objects:  # resizing keeps the split, so resize edits exist within every split
            other = replace(obj, size="small" if obj.size == "large" else "large")
            assert scene.replace_object(obj, other).split == scene.split


def _every_scene() -> list[Scene]:
    """All scenes ``sample_scene`` can draw: empty, one object, or two small ones on opposite sides."""
    objects = [Obj(sh, c, sz, p) for sh in SHAPES for c in COLOURS for sz in SIZES for p in POSITIONS]
    scenes = {Scene((), b) for b in BACKGROUNDS} | {Scene((o,), b) for o in objects for b in BACKGROUNDS}
    small = [o for o in objects if o.size == "small" and o.position in OPPOSITE]
    scenes |= {Scene((a, b), bg) for a in small for b in small for bg in BACKGROUNDS
               if b.position == OPPOSITE[a.position] and a.shape != b.shape and a.colour != b.colour}
    return sorted(scenes, key=lambda s: s.key)


def test_training_never_renders_a_validation_or_test_scene():
    """Every training data set, over a large sample: no item shows a held-out scene as its source
    or as its edited picture (captions name their scene exactly, so they are checked too)."""
    for seed in (0, 7):
        edits = EditDataset(size=8, seed=seed, with_target=True)
        for i in range(3000):
            edit = edits.edit(i)
            assert edit.source.split == edit.target.split == "train", (i, edit.instruction)
        captions = CaptionDataset(size=8, seed=seed)
        held = {caption(s) for s in _every_scene() if s.split != "train"}
        seen = {captions[i]["caption"] for i in range(3000)}
        assert len(seen) > 500 and not seen & held
    # an item's pictures are the renderings of its scenes (the check above is on what is shown)
    item, edit = EditDataset(size=8, seed=3, with_target=True)[5], EditDataset(size=8, seed=3).edit(5)
    assert torch.equal(item["source"], render(edit.source, 8)) and torch.equal(item["target"], render(edit.target, 8))


@pytest.mark.parametrize("split", ["validation", "test"])
def test_held_out_edits_are_distinct_and_stay_in_their_split(split):
    edits = split_edits(280, split)
    assert all(e.source.split == split and e.target.split in (split, "train") for e in edits)
    assert all(e.target.split == split or not e.target.objects for e in edits)  # or a bare background
    assert any(not e.target.objects for e in edits)
    assert len({(e.source.key, e.target.key) for e in edits}) == 280  # distinct edits
    assert [e.kind for e in edits] == list(KINDS) * 40
    assert [e.instruction for e in edits] == [e.instruction for e in split_edits(280, split)]
    data = EditDataset(size=8, split=split, length=70, with_target=True)
    assert [data.edit(i) for i in range(70)] == edits[:70]
    other = {(e.source.key, e.target.key) for e in split_edits(280, "validation" if split == "test" else "test")}
    assert not other & {(e.source.key, e.target.key) for e in edits}
    with pytest.raises(ValueError, match="split must be one of"):
        EditDataset(size=8, split="heldout")


@pytest.mark.parametrize("split", ["validation", "test"])
def test_transfer_cases_are_one_instruction_on_two_scenes_of_a_split(split):
    cases = transfer_cases(21, split)
    assert [pair.kind for pair, _ in cases] == list(KINDS) * 3
    for pair, quad in cases:
        assert pair.source != quad.source
        assert pair.source.split == quad.source.split == split
        assert all(e.target.split == split or not e.target.objects for e in (pair, quad))
        assert quad.instruction == pair.instruction and quad.kind == pair.kind
        assert interpret(quad.source, pair.instruction) == quad.target


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [16, 32])
def test_oracle_scores_the_truth_perfect_and_the_source_failed(kind, size):
    for edit in _edits(kind, 10):
        truth = score_edit(render(edit.target, size), edit)
        assert truth == {"strict": 1.0, "success": 1.0, "preservation": 0.0, "l1": 0.0, "l2": 0.0}
        source = score_edit(render(edit.source, size), edit)
        assert source["success"] == source["strict"] == 0.0 and source["l1"] > 0
        grain = 0.05 * torch.randn(3, size, size, generator=torch.Generator().manual_seed(0))
        noisy = score_edit(render(edit.target, size) + grain, edit)  # judged on pixels, not exact equality
        assert noisy["success"] == noisy["strict"] == 1.0


def test_oracle_catches_the_wrong_value_and_damage_outside_the_edit():
    edit = next(e for e in _edits("colour", 20) if len(e.source.objects) == 2)
    wrong = replace(edit.obj, colour=next(c for c in COLOURS if c not in {o.colour for o in edit.target.objects}))
    assert score_edit(render(edit.target.replace_object(edit.obj, wrong), 16), edit)["success"] == 0.0
    damaged = render(replace(edit.target, background="checked" if edit.target.background != "checked" else "sky"), 16)
    scores = score_edit(damaged, edit)
    assert scores["success"] == 1.0 and scores["preservation"] > PRESERVED and scores["strict"] == 0.0


@pytest.mark.parametrize("kind", ["colour", "shape", "resize", "add", "move"])
def test_oracle_checks_what_the_edited_object_is_and_where(kind):
    """The right change on the wrong object, in the wrong place, or with another attribute
    broken fails; so does a copy instead of a move."""
    for edit in _edits(kind, 12, seed=3):
        for attribute, values in VALUES.items():
            if kind == "add" and attribute == "position" and edit.source.objects:
                continue  # the only free spot of an add beside an object is the one it names
            wrong = replace(edit.obj, **{attribute: next(v for v in values if v != getattr(edit.obj, attribute))})
            if wrong in edit.target.objects or (kind == "move" and wrong in edit.source.objects):
                continue
            picture = render(edit.target.replace_object(edit.obj, wrong), 16)
            assert score_edit(picture, edit)["success"] == 0.0, (edit.instruction, attribute)
    for edit in _edits("move", 12, seed=4):
        assert score_edit(chance_pictures(edit, 16, torch.Generator())["copy"], edit)["success"] == 0.0


@pytest.mark.parametrize("size", [16, 32])
def test_preservation_is_judged_where_the_edit_keeps_something(size):
    """Every edit but a new background for an empty scene leaves pixels to judge, and they are
    pixels the true edit does not change (a small object's whole body counts, not only a border)."""
    for edit in split_edits(140, "test", seed=1):
        kept = preserved_region(edit, size)
        assert bool(kept.any()) == (edit.kind != "background" or bool(edit.source.objects)), edit.instruction
        change = (render(edit.source, size) - render(edit.target, size)).abs().sum(0)
        assert (change[kept] <= 0.05).all()
        if edit.kind == "background":
            for obj in edit.source.objects:
                assert kept[object_mask(obj, size) == 1].all()


def test_chance_pictures_are_not_strict_successes():
    table = evaluate_chance(35, 16)
    assert set(table) == set(BASELINES)
    assert table["source"]["all"]["success"] == 0.0 and table["copy"]["all"]["success"] == 0.0
    for name in ("noise", "edit fill"):
        assert table[name]["all"]["success"] > table[name]["all"]["strict"]  # raw success can be won
    generator = torch.Generator().manual_seed(0)
    for edit in split_edits(140, "test", seed=2):
        for name, picture in chance_pictures(edit, 16, generator).items():
            # a fill is right only where the answer is a bare background (a new one for an empty scene)
            if edit.target.objects:
                assert score_edit(picture, edit)["strict"] == 0.0, (name, edit.instruction)


def test_caption_accuracy():
    rng = random.Random(5)
    for _ in range(20):
        scene = sample_scene(rng)
        assert caption_correct(render(scene, 16), scene)["all"]
    scene = Scene((Obj("square", "blue", "small", "left"),), "sand")
    wrong = render(replace(scene, objects=(Obj("square", "blue", "small", "right"),)), 16)
    result = caption_correct(wrong, scene)
    assert not result["all"] and not result["blue square.position"] and result["background"]
    assert classify(render(scene, 16), scene, "shape", scene.objects[0]) == "square"
    assert caption(scene) == "a small blue square at the left on a sand background"


def test_masks_clips_and_batches():
    edit = _edits("move", 1)[0]
    mask = edit_region(edit, 32)
    assert mask.dtype == torch.bool and 0 < mask.float().mean() < 1
    outside = ~mask
    assert torch.equal(render(edit.source, 32)[:, outside], render(edit.target, 32)[:, outside])
    frames = clip(edit.source, edit.source.objects[0], edit.target.objects[0].position, 5)
    assert torch.allclose(render(frames[0], 32), render(edit.source, 32))
    assert torch.allclose(render(frames[-1], 32), render(edit.target, 32), atol=1e-5)
    assert len({render(f, 32).sum().item() for f in frames}) > 1
    batch = stack([EditDataset(size=16, with_target=True)[i] for i in range(4)])
    assert batch["source"].shape == (4, 3, 16, 16) and batch["mask"].shape == (4, 16, 16)
    assert len(batch["instruction"]) == 4 and "target" not in EditDataset(size=16)[0]
    table = summarize([("colour", {"success": 1.0}), ("shape", {"success": 0.0})])
    assert table["all"] == {"success": 0.5, "n": 2}
