"""The oracle: exact scores for any picture of a known toy scene.

To judge one attribute (an object's colour, say) it renders the scene once per possible
value of that attribute and asks which rendering the picture is nearest to, looking only
at the pixels where those renderings differ. A picture that shows the requested value wins
outright; the unedited source is one of the alternatives, so doing nothing fails.
"""

from __future__ import annotations

from dataclasses import replace
from statistics import mean

import torch

from .edits import DIFFERENT, Edit, edit_region
from .render import render
from .world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, Obj, Scene

VALUES = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "position": POSITIONS}
# Which attributes must come out right for each kind of edit.
CHECKS = {"colour": ("colour",), "background": ("background",), "shape": ("shape",),
          "add": ("presence", "colour", "shape"), "remove": ("presence",), "move": ("position",),
          "resize": ("size",)}


def variants(scene: Scene, attribute: str, obj: Obj | None = None) -> dict[str, Scene]:
    """The scene with ``attribute`` (of ``obj``) set to each of its possible values."""
    if attribute == "background":
        return {b: replace(scene, background=b) for b in BACKGROUNDS}
    if attribute == "presence":
        without = replace(scene, objects=tuple(o for o in scene.objects if o != obj))
        return {"present": replace(without, objects=without.objects + (obj,)), "absent": without}
    return {v: scene.replace_object(obj, replace(obj, **{attribute: v})) for v in VALUES[attribute]}


def classify(image: torch.Tensor, scene: Scene, attribute: str, obj: Obj | None = None) -> str:
    """The value of ``attribute`` that ``image`` [3,H,W] in -1..1 shows, all else as in ``scene``."""
    size = image.shape[-1]
    renders = {value: render(s, size) for value, s in variants(scene, attribute, obj).items()}
    stack = torch.stack(list(renders.values()))
    region = (stack - stack[:1]).abs().sum(1).amax(0) > DIFFERENT  # where any two candidates differ
    distances = ((stack - image.float().cpu()) ** 2).sum(1)[:, region].sum(-1)
    return list(renders)[int(distances.argmin())]


def score_edit(image: torch.Tensor, edit: Edit) -> dict[str, float]:
    """Success (every checked attribute right), preservation error outside the edited region,
    and L1 / L2 to the true edit; errors in 0..1 pixel units."""
    image = image.float().cpu()
    size = image.shape[-1]
    removed = next((o for o in edit.source.objects if o not in edit.target.objects), None)
    subject = removed if edit.kind == "remove" else edit.obj
    wanted = {"presence": "absent" if edit.kind == "remove" else "present", "background": edit.target.background}
    success = all(classify(image, edit.target, a, subject) == (wanted[a] if a in wanted else getattr(subject, a))
                  for a in CHECKS[edit.kind])
    truth = render(edit.target, size)
    error = (image - truth).abs() / 2
    outside = ~edit_region(edit, size)
    return {"success": float(success),
            "preservation": float(error.mean(0)[outside].mean()) if outside.any() else 0.0,
            "l1": float(error.mean()), "l2": float((error**2).mean())}


def caption_correct(image: torch.Tensor, scene: Scene) -> dict[str, bool]:
    """For a text-to-image sample: is each attribute the caption names where it should be?"""
    image = image.float().cpu()
    result = {"background": classify(image, scene, "background") == scene.background}
    for obj in scene.objects:
        for attribute in VALUES:
            result[f"{obj.name}.{attribute}"] = classify(image, scene, attribute, obj) == getattr(obj, attribute)
    result["all"] = all(result.values())
    return result


def summarize(rows: list[tuple[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean of each score per edit kind and over all rows: ``{kind: {metric: value, "n": n}}``."""
    table = {}
    for kind in sorted({k for k, _ in rows}) + ["all"]:
        picked = [r for k, r in rows if kind in ("all", k)]
        table[kind] = {m: mean(r[m] for r in picked) for m in picked[0]} | {"n": len(picked)}
    return table
