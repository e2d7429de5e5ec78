"""Toy clips: a scene whose one object may glide from its place to another over the frames, and
edits that apply to every frame (colour, background, shape, add, remove, resize) or, for a
gliding object, change its path (*move*: it ends somewhere else).

A gliding object covers ``REACH`` (half) of the way to where it heads, so a clip shows one scene of
the world, its first frame, and in-between frames that are no scene of it: a clip is of its first
scene's split, a clip edit of its source's and edited clip's, and no frame of a training clip shows
a held-out scene (a clip that reached its end would show a second scene, of any split).
The oracle scores every frame as the image oracle scores a picture (a frame the edit leaves as it
was, the first frame of a change of path, must stay as it was) and the edit's **flicker**: how
much its frame-to-frame change differs from the true edited clip's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import torch

from .edits import DIFFERENT, KINDS, PHRASES, Edit, applicable, make_edit
from .oracle import PRESERVED, score_edit
from .render import render
from .world import POSITIONS, Obj, Scene, caption, clip as glide, sample_split

MOVING = 0.7  # share of one-object clips whose object glides
REACH = 0.5  # of the way to where it heads


@dataclass(frozen=True)
class Clip:
    """``scene`` as the clip starts; ``mover`` (one of its objects) glides towards position ``to``."""

    scene: Scene
    mover: Obj | None = None
    to: str | None = None

    @property
    def split(self) -> str:
        return self.scene.split

    def frames(self, n: int) -> list[Scene]:
        return [self.scene] * n if self.mover is None else glide(self.scene, self.mover, self.to, n, REACH)

    def render(self, n: int, size: int) -> torch.Tensor:
        """The clip as [3, n, size, size] in -1..1 (channels first, then frames, as video latents)."""
        return torch.stack([render(s, size) for s in self.frames(n)], dim=1)

    @property
    def caption(self) -> str:
        """The scene's caption, the glide said as 'from the <position> to the <position>' (its heading)."""
        text = caption(self.scene)
        if self.mover is None:
            return text
        m = self.mover
        return text.replace(f"{m.colour} {m.shape} at the {m.position}", f"{m.colour} {m.shape} from the "
                            f"{m.position} to the {self.to}")


@dataclass(frozen=True)
class ClipEdit:
    kind: str
    source: Clip
    target: Clip
    instruction: str
    reverse: str

    @property
    def source_caption(self) -> str:
        return self.source.caption

    @property
    def target_caption(self) -> str:
        return self.target.caption

    def frame_edits(self, n: int, size: int) -> list[Edit | None]:
        """Per frame, the image edit it makes, or None where the frame stays as it was (no pixel of it
        changes at ``size``: the first frames of a change of path)."""
        out = []
        for source, target in zip(self.source.frames(n), self.target.frames(n)):
            if (render(source, size) - render(target, size)).abs().sum(0).max() <= DIFFERENT:
                out.append(None)
                continue
            changed = [o for o in target.objects if o not in source.objects]
            obj = None if self.kind in ("background", "remove") else changed[0]
            out.append(Edit(self.kind, source, target, self.instruction, self.reverse, obj))
        return out


def _same_heading(start: str, a: str, b: str) -> bool:
    """Whether gliding from ``start`` towards ``a`` and towards ``b`` go the same way (a change of
    path must be seen, not a change of speed)."""
    (x, y), (xa, ya), (xb, yb) = POSITIONS[start], POSITIONS[a], POSITIONS[b]
    cross = (xa - x) * (yb - y) - (ya - y) * (xb - x)
    dot = (xa - x) * (xb - x) + (ya - y) * (yb - y)
    return abs(cross) < 1e-9 and dot > 0


def sample_clip(rng: random.Random, split: str = "train") -> Clip:
    """A clip of ``split``: a scene of it, its one object gliding to another place (``MOVING``) or still."""
    while True:
        scene = sample_split(rng, split)
        clip = Clip(scene)
        if len(scene.objects) == 1 and rng.random() < MOVING:
            (obj,) = scene.objects
            clip = Clip(scene, obj, rng.choice([p for p in POSITIONS if p != obj.position]))
        if clip.split == split:
            return clip


def fixed_clips(n: int, split: str = "test") -> list[Clip]:
    """The first ``n`` clips of a split, the same on every call (what text-to-video validation samples)."""
    rng = random.Random(0)
    return [sample_clip(rng, split) for _ in range(n)]


def clip_applicable(kind: str, clip: Clip) -> bool:
    """Adding needs room along the whole path, so only a still clip takes an object."""
    return applicable(kind, clip.scene) and not (kind == "add" and clip.mover is not None)


def make_clip_edit(kind: str, clip: Clip, rng: random.Random) -> ClipEdit:
    """A random edit of ``kind`` of every frame of ``clip``; a move of a gliding object changes where it ends."""
    if not clip_applicable(kind, clip):
        raise ValueError(f"A {kind} edit does not apply to the clip {clip.caption!r}.")
    if kind == "move" and clip.mover is not None:
        m = clip.mover
        new = rng.choice([p for p in POSITIONS if p != m.position and not _same_heading(m.position, clip.to, p)])
        say = rng.choice(PHRASES["move"])
        return ClipEdit("move", clip, replace(clip, to=new), say.format(o=m.name, new=new),
                        PHRASES["move"][0].format(o=m.name, new=clip.to))
    edit = make_edit(kind, clip.scene, rng)
    mover = None
    if clip.mover is not None and kind != "remove":  # the one object is the one edited: it keeps gliding
        mover = edit.obj if kind in ("colour", "shape", "resize") else clip.mover
    target = Clip(edit.target, mover, clip.to if mover is not None else None)
    return ClipEdit(kind, clip, target, edit.instruction, edit.reverse)


def sample_clip_edit(rng: random.Random, split: str = "train", kinds: tuple[str, ...] = KINDS) -> ClipEdit:
    """A random edit whose source and edited clips are both of ``split``."""
    while True:
        clip = sample_clip(rng, split)
        edit = make_clip_edit(rng.choice([k for k in kinds if clip_applicable(k, clip)]), clip, rng)
        if edit.target.split == split:
            return edit


def split_clip_edits(n: int, split: str = "test", seed: int = 0, kinds: tuple[str, ...] = KINDS,
                     tries: int = 200_000) -> list[ClipEdit]:
    """A fixed list of ``n`` distinct clip edits within ``split``, cycling through the kinds."""
    rng, edits, seen = random.Random(seed), [], set()
    for _ in range(tries):
        if len(edits) == n:
            return edits
        kind = kinds[len(edits) % len(kinds)]
        clip = sample_clip(rng, split)
        if not clip_applicable(kind, clip):
            continue
        edit = make_clip_edit(kind, clip, rng)
        key = (edit.source, edit.target)
        if edit.target.split == split and key not in seen:
            seen.add(key)
            edits.append(edit)
    raise ValueError(f"The {split} split holds fewer than {n} distinct clip edits of the kinds {kinds}.")


def flicker(edited: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean difference between the edit's frame-to-frame change and the true clip's, in 0..1 units:
    [3, F, H, W] clips in -1..1; 0 for a clip that changes exactly as the truth does."""
    if edited.shape[1] < 2:
        return 0.0
    change = edited.float().diff(dim=1) - truth.float().diff(dim=1)
    return float(change.abs().mean() / 2)


def score_clip(edited: torch.Tensor, edit: ClipEdit) -> dict[str, float]:
    """Per-frame means of the image oracle's strict success, success and preservation (a frame the
    edit leaves alone: its error against the source frame, strict and successful within
    ``PRESERVED``), every frame strict at once (``clip_strict``), and flicker."""
    edited = edited.float().cpu()
    n, size = edited.shape[1], edited.shape[-1]
    rows = []
    for f, frame_edit in enumerate(edit.frame_edits(n, size)):
        if frame_edit is None:
            error = float((edited[:, f] - render(edit.target.frames(n)[f], size)).abs().mean() / 2)
            ok = float(error <= PRESERVED)
            rows.append({"strict": ok, "success": ok, "preservation": error})
        else:
            rows.append(score_edit(edited[:, f], frame_edit))
    mean = {k: sum(r[k] for r in rows) / n for k in ("strict", "success", "preservation")}
    return {**mean, "clip_strict": float(all(r["strict"] for r in rows)),
            "flicker": flicker(edited, edit.target.render(n, size))}
