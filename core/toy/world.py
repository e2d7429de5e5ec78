"""The synthetic toy world: scenes of one or two coloured shapes on a background.

Everything is discrete except where objects sit during a clip, so a scene has an exact
identity (``Scene.key``) that fixes its split (train, validation or test), and any scene can be
rendered at any size. Objects are referred to as "the <colour> <shape>"; a scene never holds two objects of
the same colour or the same shape, so that phrase is always unambiguous.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (220, 45, 45), "green": (40, 170, 60), "blue": (45, 85, 225), "yellow": (240, 215, 40),
    "purple": (150, 60, 195), "orange": (245, 140, 30), "white": (245, 245, 245), "black": (25, 25, 25),
}
# name -> (colour, second colour for a checked texture or None)
BACKGROUNDS = {
    "grey": ((128, 128, 128), None), "sky": ((150, 195, 240), None), "sand": ((215, 195, 145), None),
    "grass": ((105, 160, 85), None), "checked": ((200, 200, 200), (90, 90, 90)),
}
SIZES = {"small": 0.25, "large": 0.375}  # half-size as a fraction of the image side
POSITIONS = {"center": (0.5, 0.5), "left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28),
             "bottom": (0.5, 0.72)}
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
# Percent of scenes in each held-out split; the rest is "train", the only scenes training renders.
# The test share is large enough for 40 distinct test edits of every kind (resize is the scarcest).
HELD_OUT_PERCENT = {"validation": 10, "test": 15}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str = "large"
    position: str = "center"
    offset: tuple[float, float] = (0.0, 0.0)  # extra displacement in image units (clips only)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def centre(self) -> tuple[float, float]:
        x, y = POSITIONS[self.position]
        return x + self.offset[0], y + self.offset[1]


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: str = "grey"

    def __post_init__(self) -> None:  # the same objects in any order are the same scene
        object.__setattr__(self, "objects", tuple(sorted(self.objects, key=lambda o: (o.shape, o.colour))))

    @property
    def key(self) -> str:
        parts = [f"{o.shape},{o.colour},{o.size},{o.position}" for o in self.objects]
        return f"{self.background}|{';'.join(parts)}"

    @property
    def split(self) -> str:
        """"train", "validation" or "test", fixed by a hash of the scene without its objects'
        sizes: a scene and its resized versions share a split, so a resize never crosses one.
        The five bare backgrounds are "train": every picture shows them, and holding one out
        would leave the test split's removals all ending in the same picture."""
        if not self.objects:
            return "train"
        layout = "|".join([self.background] + [f"{o.shape},{o.colour},{o.position}" for o in self.objects])
        bucket = int.from_bytes(hashlib.sha256(layout.encode()).digest()[:4], "big") % 100
        if bucket < HELD_OUT_PERCENT["test"]:
            return "test"
        return "validation" if bucket < HELD_OUT_PERCENT["test"] + HELD_OUT_PERCENT["validation"] else "train"

    def find(self, name: str) -> Obj:
        return next(o for o in self.objects if o.name == name)

    def replace_object(self, old: Obj, new: Obj | None) -> "Scene":
        objects = tuple(new if o == old else o for o in self.objects if new is not None or o != old)
        return replace(self, objects=objects)


def caption(scene: Scene) -> str:
    """'a large red circle at the left on a grass background' (objects joined by 'and')."""
    parts = [f"a {o.size} {o.colour} {o.shape} at the {o.position}" for o in scene.objects]
    things = " and ".join(parts) if parts else "nothing"
    return f"{things} on a {scene.background} background"


def vocabulary() -> list[str]:
    """Every word captions and instructions use, for the toy text encoder's tokenizer."""
    words = set(SHAPES) | set(COLOURS) | set(BACKGROUNDS) | set(SIZES) | set(POSITIONS)
    words |= set("""a an the at on background and nothing add remove put place draw delete erase take away
    get rid of make turn change paint colour color into to from move shift slide bigger smaller larger
    enlarge shrink it its replace with in scene image picture""".split())
    return sorted(words)


def sample_object(rng: random.Random, taken: tuple[Obj, ...] = (), size: str | None = None,
                  position: str | None = None) -> Obj:
    """An object whose colour and shape differ from those of ``taken``."""
    return Obj(shape=rng.choice([s for s in SHAPES if s not in {o.shape for o in taken}]),
               colour=rng.choice([c for c in COLOURS if c not in {o.colour for o in taken}]),
               size=size or rng.choice(list(SIZES)), position=position or rng.choice(list(POSITIONS)))


def sample_scene(rng: random.Random, two_objects: float = 0.3, empty: float = 0.05) -> Scene:
    """An empty background (rarely), one object of any size anywhere, or two small objects on
    opposite sides (so that they never overlap)."""
    background = rng.choice(list(BACKGROUNDS))
    r = rng.random()
    if r < empty:
        return Scene((), background)
    if r < empty + two_objects:
        side = rng.choice(list(OPPOSITE))
        a = sample_object(rng, size="small", position=side)
        return Scene((a, sample_object(rng, (a,), size="small", position=OPPOSITE[side])), background)
    return Scene((sample_object(rng),), background)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
    return split


def sample_split(rng: random.Random, split: str, **kw) -> Scene:
    """A scene of ``split`` ("train", "validation" or "test")."""
    check_split(split)
    while True:
        scene = sample_scene(rng, **kw)
        if scene.split == split:
            return scene


def fixed_scenes(n: int, split: str = "test") -> list[Scene]:
    """The first ``n`` scenes of a split, the same on every call: what validations (on
    "validation") and evaluations (on "test") sample and score."""
    rng = random.Random(0)
    return [sample_split(rng, split) for _ in range(n)]


def clip(scene: Scene, obj: Obj, to_position: str, frames: int, reach: float = 1.0) -> list[Scene]:
    """``obj`` gliding from where it is towards ``to_position`` over ``frames`` frames, ``reach`` of the way."""
    (x0, y0), (x1, y1) = POSITIONS[obj.position], POSITIONS[to_position]
    steps = [reach * i / max(1, frames - 1) for i in range(frames)]
    return [scene.replace_object(obj, replace(obj, offset=((x1 - x0) * f, (y1 - y0) * f))) for f in steps]
