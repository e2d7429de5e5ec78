"""Edits of toy scenes: an instruction in varied words, the edited scene, and a
self-contained reverse instruction that turns the edited scene back into the source."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .render import render
from .world import (BACKGROUNDS, COLOURS, OPPOSITE, POSITIONS, SHAPES, SIZES, Obj, Scene, caption,
                    sample_object, sample_split)

DIFFERENT = 0.05  # in -1..1 units summed over channels: "these two renderings differ here"
KINDS = ("colour", "background", "shape", "add", "remove", "move", "resize")

PHRASES = {
    "colour": ["make the {o} {new}", "turn the {o} {new}", "paint the {o} {new}",
               "change the colour of the {o} to {new}", "change the {shape} from {old} to {new}"],
    "background": ["change the background to {new}", "make the background {new}",
                   "put it on a {new} background", "replace the background with {new}"],
    "shape": ["turn the {o} into a {new}", "change the {o} into a {new}", "make the {o} a {new}",
              "replace the {o} with a {colour} {new}"],
    "add": ["add a {size} {colour} {shape} at the {position}", "put a {size} {colour} {shape} at the {position}",
            "draw a {size} {colour} {shape} at the {position}", "place a {size} {colour} {shape} at the {position}"],
    "remove": ["remove the {o}", "delete the {o}", "erase the {o}", "take away the {o}", "get rid of the {o}"],
    "move": ["move the {o} to the {new}", "shift the {o} to the {new}", "slide the {o} to the {new}"],
    "bigger": ["make the {o} bigger", "make the {o} larger", "enlarge the {o}"],
    "smaller": ["make the {o} smaller", "shrink the {o}"],
}


@dataclass(frozen=True)
class Edit:
    kind: str
    source: Scene
    target: Scene
    instruction: str
    reverse: str  # names everything it needs, so it works on the edited image alone
    obj: Obj | None  # the object as it is in the target (None for background edits and removals)

    @property
    def source_caption(self) -> str:
        return caption(self.source)

    @property
    def target_caption(self) -> str:
        return caption(self.target)


def edit_region(edit: Edit, size: int) -> torch.Tensor:
    """Pixels the edit changes, grown by one pixel so anti-aliased borders count as changed:
    a [size, size] bool mask (what an inpainting model would be given)."""
    changed = (render(edit.source, size) - render(edit.target, size)).abs().sum(0) > DIFFERENT
    return F.max_pool2d(changed.float()[None, None], 3, stride=1, padding=1)[0, 0] > 0


def applicable(kind: str, scene: Scene) -> bool:
    n = len(scene.objects)
    if kind in ("colour", "shape", "remove"):
        return n > 0
    if kind in ("move", "resize"):
        return n == 1
    if kind == "add":
        return n == 0 or (n == 1 and scene.objects[0].size == "small" and scene.objects[0].position in OPPOSITE)
    return kind == "background"


def make_edit(kind: str, scene: Scene, rng: random.Random) -> Edit:
    """A random edit of ``kind`` that applies to ``scene`` (see ``applicable``)."""
    if not applicable(kind, scene):
        raise ValueError(f"A {kind} edit does not apply to {caption(scene)!r}.")
    return _MAKERS[kind](scene, rng)


def sample_edit(rng: random.Random, split: str = "train", kinds: tuple[str, ...] = KINDS) -> Edit:
    """A random edit whose source and edited scene are both of ``split``: an edit that would
    cross into another split is drawn again, so training never renders a held-out scene."""
    while True:
        scene = sample_split(rng, split)
        edit = make_edit(rng.choice([k for k in kinds if applicable(k, scene)]), scene, rng)
        if edit.target.split == split:
            return edit


def ends_within(edit: Edit, split: str) -> bool:
    """Whether a held-out edit stays in ``split``: its edited scene is of the split, or a bare
    background (which every split shares; see ``Scene.split``)."""
    return edit.target.split == split or not edit.target.objects


def split_edits(n: int, split: str = "test", seed: int = 0, kinds: tuple[str, ...] = KINDS,
                tries: int = 200_000) -> list[Edit]:
    """A fixed list of ``n`` distinct edits within ``split`` (source and edited scene), cycling
    through the kinds (``ends_within``): what validation ("validation") and evaluation ("test")
    score."""
    rng, edits, seen = random.Random(seed), [], set()
    for _ in range(tries):
        if len(edits) == n:
            return edits
        kind = kinds[len(edits) % len(kinds)]
        scene = sample_split(rng, split)
        if not applicable(kind, scene):
            continue
        edit = make_edit(kind, scene, rng)
        if ends_within(edit, split) and (scene.key, edit.target.key) not in seen:
            seen.add((scene.key, edit.target.key))
            edits.append(edit)
    raise ValueError(f"The {split} split holds fewer than {n} distinct edits of the kinds {kinds}.")


def analogous(edit: Edit, rng: random.Random, tries: int = 2000) -> Edit:
    """The same instruction on another scene of the same split, its edit within that split too
    (A:A' :: B:B'): what an edit learnt from one before/after pair is judged on."""
    split = edit.source.split
    for _ in range(tries):
        scene = sample_split(rng, split)
        if scene == edit.source:
            continue
        try:
            other = as_edit(scene, edit.instruction, edit.reverse)
        except ValueError:
            continue
        if possible(other.target) and ends_within(other, split):
            return other
    raise ValueError(f"No other scene found for {edit.instruction!r} in {tries} tries.")


def transfer_cases(n: int, split: str = "test", seed: int = 0,
                   kinds: tuple[str, ...] = KINDS) -> list[tuple[Edit, Edit]]:
    """``n`` distinct pairs of ``split``, cycling through the kinds, each with the same instruction
    on another scene of the split; a pair whose instruction fits no other scene is passed over."""
    rng, cases, seen = random.Random(seed), [], set()
    while len(cases) < n:
        kind = kinds[len(cases) % len(kinds)]
        scene = sample_split(rng, split)
        if not applicable(kind, scene):
            continue
        pair = make_edit(kind, scene, rng)
        if not ends_within(pair, split) or (scene.key, pair.target.key) in seen:
            continue
        try:
            cases.append((pair, analogous(pair, rng)))
        except ValueError:
            continue
        seen.add((scene.key, pair.target.key))
    return cases


def possible(scene: Scene) -> bool:
    """Whether ``sample_scene`` could have drawn ``scene``: at most one object, or two small ones
    on opposite sides that differ in colour and shape."""
    if len(scene.objects) != 2:
        return len(scene.objects) < 2
    a, b = scene.objects
    return (a.size == b.size == "small" and OPPOSITE.get(a.position) == b.position
            and a.colour != b.colour and a.shape != b.shape)


def _say(rng: random.Random, key: str, **slots) -> str:
    return rng.choice(PHRASES[key]).format(**slots)


def _pick_object(scene: Scene, rng: random.Random) -> Obj:
    return rng.choice(scene.objects)


def _others(scene: Scene, obj: Obj) -> tuple[Obj, ...]:
    return tuple(o for o in scene.objects if o != obj)


def _colour(scene: Scene, rng: random.Random) -> Edit:
    obj = _pick_object(scene, rng)
    taken = {o.colour for o in scene.objects}
    new = replace(obj, colour=rng.choice([c for c in COLOURS if c not in taken]))
    text = _say(rng, "colour", o=obj.name, new=new.colour, old=obj.colour, shape=obj.shape)
    back = PHRASES["colour"][0].format(o=new.name, new=obj.colour)
    return Edit("colour", scene, scene.replace_object(obj, new), text, back, new)


def _background(scene: Scene, rng: random.Random) -> Edit:
    new = rng.choice([b for b in BACKGROUNDS if b != scene.background])
    target = replace(scene, background=new)
    back = PHRASES["background"][0].format(new=scene.background)
    return Edit("background", scene, target, _say(rng, "background", new=new), back, None)


def _shape(scene: Scene, rng: random.Random) -> Edit:
    obj = _pick_object(scene, rng)
    taken = {o.shape for o in scene.objects}
    new = replace(obj, shape=rng.choice([s for s in SHAPES if s not in taken]))
    text = _say(rng, "shape", o=obj.name, new=new.shape, colour=obj.colour)
    back = PHRASES["shape"][0].format(o=new.name, new=obj.shape)
    return Edit("shape", scene, scene.replace_object(obj, new), text, back, new)


def _add(scene: Scene, rng: random.Random) -> Edit:
    if scene.objects:
        (there,) = scene.objects
        new = sample_object(rng, scene.objects, size="small", position=OPPOSITE[there.position])
    else:
        new = sample_object(rng)
    target = replace(scene, objects=scene.objects + (new,))
    text = _say(rng, "add", size=new.size, colour=new.colour, shape=new.shape, position=new.position)
    back = PHRASES["remove"][0].format(o=new.name)
    return Edit("add", scene, target, text, back, new)


def _remove(scene: Scene, rng: random.Random) -> Edit:
    obj = _pick_object(scene, rng)
    back = PHRASES["add"][0].format(size=obj.size, colour=obj.colour, shape=obj.shape, position=obj.position)
    return Edit("remove", scene, replace(scene, objects=_others(scene, obj)), _say(rng, "remove", o=obj.name),
                back, None)


def _move(scene: Scene, rng: random.Random) -> Edit:
    (obj,) = scene.objects
    new = replace(obj, position=rng.choice([p for p in POSITIONS if p != obj.position]))
    back = PHRASES["move"][0].format(o=obj.name, new=obj.position)
    return Edit("move", scene, scene.replace_object(obj, new), _say(rng, "move", o=obj.name, new=new.position),
                back, new)


def _resize(scene: Scene, rng: random.Random) -> Edit:
    (obj,) = scene.objects
    grow = obj.size == "small"
    new = replace(obj, size="large" if grow else "small")
    text = _say(rng, "bigger" if grow else "smaller", o=obj.name)
    back = PHRASES["smaller" if grow else "bigger"][0].format(o=obj.name)
    return Edit("resize", scene, scene.replace_object(obj, new), text, back, new)


_MAKERS = {"colour": _colour, "background": _background, "shape": _shape, "add": _add, "remove": _remove,
           "move": _move, "resize": _resize}



def _words(names) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


# What each slot of a phrase may hold ("new" depends on the kind of edit).
_SLOTS = {"o": rf"(?:{_words(COLOURS)}) (?:{_words(SHAPES)})", "old": _words(COLOURS), "colour": _words(COLOURS),
          "shape": _words(SHAPES), "size": _words(SIZES), "position": _words(POSITIONS)}
_NEW = {"colour": COLOURS, "background": BACKGROUNDS, "shape": SHAPES, "move": POSITIONS}


def _pattern(key: str, template: str) -> re.Pattern:
    """'make the {o} {new}' -> a regex with one named group per slot."""
    out = re.escape(template)
    for slot in re.findall(r"\\\{(\w+)\\\}", out):
        words = _words(_NEW[key]) if slot == "new" else _SLOTS[slot]
        out = out.replace(rf"\{{{slot}\}}", f"(?P<{slot}>{words})", 1)
    return re.compile(out + "$")


_PATTERNS = [(key, _pattern(key, t)) for key, templates in PHRASES.items() for t in templates]


def interpret(scene: Scene, instruction: str) -> Scene:
    """Apply an instruction in this module's phrasing to ``scene`` (the generator's inverse,
    used to check that instructions and reverse instructions say what they mean)."""
    key, slots = _match(instruction)
    return _APPLY[key](scene, slots)


def as_edit(scene: Scene, instruction: str, reverse: str = "") -> Edit:
    """The edit an instruction in this module's phrasing makes of ``scene``, for the oracle."""
    key, slots = _match(instruction)
    try:
        target = _APPLY[key](scene, slots)
    except StopIteration:
        raise ValueError(f"{instruction!r} names no object of this scene.") from None
    kind = "resize" if key in ("bigger", "smaller") else key
    changed = [o for o in target.objects if o not in scene.objects]
    if target == scene or (kind not in ("background", "remove") and not changed):
        raise ValueError(f"{instruction!r} does not change this scene.")
    obj = None if kind in ("background", "remove") else changed[0]
    return Edit(kind, scene, target, instruction, reverse, obj)


def _match(instruction: str) -> tuple[str, dict]:
    for key, pattern in _PATTERNS:
        m = pattern.match(instruction)
        if m:
            return key, m.groupdict()
    raise ValueError(f"Not a toy-world instruction: {instruction!r}.")


def _target_obj(scene: Scene, slots: dict) -> Obj:
    if "o" in slots:
        return scene.find(slots["o"])
    return next(o for o in scene.objects if o.shape == slots["shape"] and o.colour == slots["old"])


def _set(field: str, slot: str = "new"):
    def apply(scene: Scene, slots: dict) -> Scene:
        obj = _target_obj(scene, slots)
        return scene.replace_object(obj, replace(obj, **{field: slots[slot]}))
    return apply


def _apply_add(scene: Scene, slots: dict) -> Scene:
    new = Obj(slots["shape"], slots["colour"], slots["size"], slots["position"])
    return replace(scene, objects=scene.objects + (new,))


_APPLY = {
    "colour": _set("colour"), "shape": _set("shape"), "move": _set("position"),
    "background": lambda scene, slots: replace(scene, background=slots["new"]),
    "add": _apply_add,
    "remove": lambda scene, slots: scene.replace_object(_target_obj(scene, slots), None),
    "bigger": lambda scene, slots: _resize_to(scene, slots, "large"),
    "smaller": lambda scene, slots: _resize_to(scene, slots, "small"),
}


def _resize_to(scene: Scene, slots: dict, size: str) -> Scene:
    obj = _target_obj(scene, slots)
    return scene.replace_object(obj, replace(obj, size=size))
