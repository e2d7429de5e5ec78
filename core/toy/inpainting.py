"""Inpainting tasks of the toy world and their oracle.

A task masks part of a scene's rendering and names what the hole should show: the object that
was there ("fill"), the background behind it ("erase") or, for a strip along a border, the whole
scene ("outpaint"). The true picture is a known scene, so any result is scored exactly, and a
held-out task keeps both its scenes within its split, as held-out edits do (``within``).

The oracle judges the hole by itself: outside it the input picture already shows the truth, so
an attribute judged over the whole picture (as ``oracle.classify`` does) would be won by leaving
the hole as it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import torch

from .edits import DIFFERENT, Edit, edit_region
from .oracle import PRESERVED, VALUES, variants
from .render import object_mask, render
from .world import OPPOSITE, Obj, Scene, caption, check_split, sample_split

KINDS = ("fill", "erase", "outpaint")
SIDES = tuple(OPPOSITE)  # left, right, top, bottom
# Outpainted share of the side: multiples of 1/16, so the strip is exact at 16 px, 32 px, ...
EXTENTS = (0.25, 0.3125, 0.375)
# Margin of a fill or erase mask around the object's bounding box, as a share of the side (1 px at
# 16 px, 2 px at 32 px, never under 1 px): a box rather than the outline, so the hole does not give
# the shape away, and a margin, so the object's anti-aliased border is regenerated too.
GROW = 1 / 16
# Strict success also needs the hole within this mean error of the truth (0..1 units). Noise in the
# hole is at least 0.25 off whatever it should show (E|u - c|/2 >= 1/4 for u uniform in -1..1) and
# wins the nearest-value checks on a grey background; a right picture with its object a pixel off
# scores under 0.1.
FAITHFUL = 0.2


@dataclass(frozen=True)
class InpaintTask:
    kind: str  # one of KINDS
    scene: Scene  # its rendering is the input picture before masking
    truth: Scene  # what the picture should show afterwards, the hole included
    prompt: str
    obj: Obj | None = None  # the object filled or erased (None for outpaint)
    side: str | None = None  # the border outpainted (outpaint only)
    extent: float = 0.0  # the outpainted share of the side (outpaint only)
    grow: float = GROW  # the fill or erase mask's margin as a share of the side (see GROW)


def object_phrase(obj: Obj) -> str:
    """'a large red circle at the left': how captions name an object."""
    return f"a {obj.size} {obj.colour} {obj.shape} at the {obj.position}"


def background_phrase(scene: Scene) -> str:
    """'a grass background': how captions name the background."""
    return f"a {scene.background} background"


def applicable(kind: str, scene: Scene) -> bool:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    return kind == "outpaint" or bool(scene.objects)


def make_task(kind: str, scene: Scene, rng: random.Random) -> InpaintTask:
    """A random task of ``kind`` on ``scene`` (fill and erase need an object)."""
    if not applicable(kind, scene):
        raise ValueError(f"A {kind} task does not apply to {caption(scene)!r}.")
    if kind == "outpaint":
        side, extent = rng.choice(_strips(scene))
        return InpaintTask(kind, scene, scene, caption(scene), side=side, extent=extent)
    obj = rng.choice(scene.objects)
    if kind == "fill":
        return InpaintTask(kind, scene, scene, object_phrase(obj), obj)
    return InpaintTask(kind, scene, scene.replace_object(obj, None), background_phrase(scene), obj)


def _strips(scene: Scene) -> list[tuple[str, float]]:
    """(side, extent) of the strips that cut into an object, or of every strip for a bare
    background: a strip of plain background would be won by a flat fill."""
    every = [(side, extent) for side in SIDES for extent in EXTENTS]
    body = torch.zeros(16, 16, dtype=torch.bool)  # where an object covers most of a pixel, at 16 px
    for obj in scene.objects:
        body |= _coverage(obj, 16) > 0.5
    return [s for s in every if body[_strip(*s, 16)].any()] or every


@lru_cache(maxsize=1024)
def _coverage(obj: Obj, size: int) -> torch.Tensor:  # masks and strips ask for the same few objects
    return object_mask(obj, size)


def _strip(side: str, extent: float, size: int) -> tuple[slice, slice]:
    """The rows and columns of the strip of ``extent`` along ``side``."""
    width = round(extent * size)
    return {"left": (slice(None), slice(0, width)), "right": (slice(None), slice(size - width, size)),
            "top": (slice(0, width), slice(None)), "bottom": (slice(size - width, size), slice(None))}[side]


def within(task: InpaintTask, split: str) -> bool:
    """Whether both scenes of ``task`` are of ``split``; a bare background, which every split
    shares (see ``Scene.split`` and ``edits.ends_within``), counts as any split's."""
    return task.scene.split == split and (task.truth.split == split or not task.truth.objects)


def sample_task(rng: random.Random, split: str = "train", kinds: tuple[str, ...] = KINDS) -> InpaintTask:
    """A random task within ``split``: one that would cross into another split is drawn again, so
    training never renders a held-out scene."""
    check_split(split)
    while True:
        scene = sample_split(rng, split)
        usable = [k for k in kinds if applicable(k, scene)]
        if usable:
            task = make_task(rng.choice(usable), scene, rng)
            if within(task, split):
                return task


def _identity(task: InpaintTask) -> tuple:
    """What makes two tasks one question: outpaints of one side that differ in extent only are one."""
    return task.kind, task.scene.key, task.obj.name if task.obj else task.side


def split_tasks(n: int, split: str = "test", seed: int = 0, kinds: tuple[str, ...] = KINDS,
                tries: int = 200_000) -> list[InpaintTask]:
    """A fixed list of ``n`` distinct tasks within ``split``, cycling through the kinds: what
    validation ("validation") and evaluation ("test") score."""
    check_split(split)
    rng, tasks, seen = random.Random(seed), [], set()
    for _ in range(tries):
        if len(tasks) == n:
            return tasks
        kind = kinds[len(tasks) % len(kinds)]
        scene = sample_split(rng, split)
        if not applicable(kind, scene):
            continue
        task = make_task(kind, scene, rng)
        if within(task, split) and _identity(task) not in seen:
            seen.add(_identity(task))
            tasks.append(task)
    raise ValueError(f"The {split} split holds fewer than {n} distinct tasks of the kinds {kinds}.")


def task_mask(task: InpaintTask, size: int) -> torch.Tensor:
    """[size, size] float, 1 where the picture is to be regenerated (ComfyUI's MASK convention):
    the border strip of an outpaint, else the object's bounding box grown by ``task.grow``."""
    mask = torch.zeros(size, size)
    if task.kind == "outpaint":
        mask[_strip(task.side, task.extent, size)] = 1.0
        return mask
    rows, cols = (_coverage(task.obj, size) > 0).nonzero(as_tuple=True)
    margin = max(1, round(task.grow * size))
    mask[max(0, int(rows.min()) - margin):int(rows.max()) + margin + 1,
         max(0, int(cols.min()) - margin):int(cols.max()) + margin + 1] = 1.0
    return mask


def concerned_region(task: InpaintTask, size: int) -> torch.Tensor:
    """[size, size] bool: the pixels of the object filled or erased, grown a pixel as
    ``edit_region`` grows a change (none for outpaint). The hole's other pixels should stay."""
    if task.obj is None:
        return torch.zeros(size, size, dtype=torch.bool)
    without = task.scene.replace_object(task.obj, None)  # the scene holds the object for both kinds
    return edit_region(Edit("remove", task.scene, without, "", "", None), size)


def checks(task: InpaintTask) -> list[tuple[str, Obj | None, str]]:
    """(attribute, object, wanted value) that the hole must show, judged against the truth: its
    background, every object of the truth whole and as it is (the one filled, and any other that
    reaches in), and for an erase the object gone."""
    wanted = [("background", None, task.truth.background)]
    if task.kind == "erase":
        wanted.append(("presence", task.obj, "absent"))
    for obj in task.truth.objects:
        wanted += [("presence", obj, "present")] + [(a, obj, getattr(obj, a)) for a in VALUES]
    return wanted


@lru_cache(maxsize=2048)
def _render(scene: Scene, size: int) -> torch.Tensor:  # the checks render the same variants again and again
    return render(scene, size)


def shows(image: torch.Tensor, scene: Scene, attribute: str, obj: Obj | None, value: str,
          hole: torch.Tensor) -> bool:
    """Whether ``image`` [3,H,W] shows ``value`` of ``attribute`` inside ``hole``, all else as in
    ``scene``: ``oracle.classify``'s nearest rendering, judged on the hole's pixels only. Values
    that look like ``value`` there (an object's colour when it lies outside the hole) count as it."""
    options = variants(scene, attribute, obj)
    stack = torch.stack([_render(s, image.shape[-1]) for s in options.values()])
    apart = (stack - stack[list(options).index(value)]).abs().sum(1) > DIFFERENT  # [values, H, W]
    region = apart.any(0) & hole
    if not region.any():
        return True
    distances = ((stack - image) ** 2).sum(1)[:, region].sum(-1)
    return not bool(apart[int(distances.argmin())][region].any())


def seam(image: torch.Tensor, truth: torch.Tensor, hole: torch.Tensor) -> float:
    """Mean error of the jumps across the hole's border against the truth's, over every
    horizontally or vertically adjacent pair with one pixel in the hole (0 without a border)."""
    errors = []
    for dim in (1, 2):
        n = image.shape[dim] - 1
        crossing = hole.narrow(dim - 1, 0, n) != hole.narrow(dim - 1, 1, n)
        jump = (image.narrow(dim, 0, n) - image.narrow(dim, 1, n)) - (truth.narrow(dim, 0, n) - truth.narrow(dim, 1, n))
        errors.append((jump.abs() / 2).mean(0)[crossing])
    pairs = torch.cat(errors)
    return float(pairs.mean()) if pairs.numel() else 0.0


def score_inpaint(image: torch.Tensor, task: InpaintTask, given: torch.Tensor | None = None) -> dict[str, float]:
    """Scores of ``image`` [3,H,W] in -1..1 for ``task``; ``given`` is the input picture (default:
    the scene's rendering). Errors are in 0..1 pixel units.

    success: every check right inside the hole (``checks``, ``shows``); preservation: mean error to
    the truth where nothing should change (outside the hole, and inside it off the concerned object);
    strict: success, preservation within ``oracle.PRESERVED`` and l1 within ``FAITHFUL``; l1: mean
    error to the truth inside the hole; seam: ``seam``; outside: the largest change from ``given``
    outside the hole (0: untouched).
    """
    image = image.float().cpu()
    size = image.shape[-1]
    given = _render(task.scene, size) if given is None else given.float().cpu()
    truth = _render(task.truth, size)
    hole = task_mask(task, size) > 0.5
    success = all(shows(image, task.truth, a, o, v, hole) for a, o, v in checks(task))
    error = (image - truth).abs().mean(0) / 2
    preservation = float(error[~hole | ~concerned_region(task, size)].mean())
    l1 = float(error[hole].mean())
    outside = float(((image - given).abs() / 2)[:, ~hole].max()) if (~hole).any() else 0.0
    return {"strict": float(success and preservation <= PRESERVED and l1 <= FAITHFUL), "success": float(success),
            "preservation": preservation, "l1": l1, "seam": seam(image, truth, hole), "outside": outside}
