"""The oracle: exact scores for any picture of a known toy scene.

To judge one attribute (an object's colour, say) it renders the scene once per possible
value of that attribute and asks which rendering the picture is nearest to, looking only
at the pixels where those renderings differ. A picture that shows the requested value wins
outright; the unedited source is one of the alternatives, so doing nothing fails.

An edit succeeds when the edited object is exactly the target's (what it is and where it is)
and, for a move, it is no longer where it was. That alone can be won by pictures that wreck
the rest of the scene (a flat fill of the new colour "recolours" the object), so the headline
measure is *strict* success: success with the rest of the picture preserved (``PRESERVED``).
"""

from __future__ import annotations

from dataclasses import replace
from statistics import mean

import torch

from .edits import DIFFERENT, Edit, edit_region
from .render import render
from .world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, Obj, Scene

VALUES = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "position": POSITIONS}
# Strict success allows at most this preservation error (mean over the pixels the edit leaves
# alone, 0..1 units). It is under half the smallest change of background the world has (grass
# against grey, 0.128), so a picture whose background drifted to another one fails, and far under
# every chance picture's (noise, fills: see README), while leaving room for a sampler's grain.
PRESERVED = 0.05


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


def checks(edit: Edit) -> list[tuple[str, Obj | None, str]]:
    """(attribute, object, wanted value): what a picture must show for ``edit`` to succeed."""
    if edit.kind == "background":
        return [("background", None, edit.target.background)]
    gone = next((o for o in edit.source.objects if o not in edit.target.objects), None)
    if edit.kind == "remove":
        return [("presence", gone, "absent")]
    wanted = [(a, edit.obj, getattr(edit.obj, a)) for a in VALUES]  # the object is the target's, where it should be
    if edit.kind == "add":
        wanted.insert(0, ("presence", edit.obj, "present"))
    if edit.kind == "move":
        wanted.append(("presence", gone, "absent"))  # moved, not copied
    return wanted


def preserved_region(edit: Edit, size: int) -> torch.Tensor:
    """The pixels whose preservation is judged: [size, size] bool. Outside the edit region, which is
    grown by a pixel to forgive an edited object's edge drawn a pixel off; a background edit moves no
    edge (the objects' blended borders are part of its change already), and growing its change would
    swallow a small object whole and leave nothing to judge, so it is judged outside the exact change."""
    if edit.kind == "background":
        return (render(edit.source, size) - render(edit.target, size)).abs().sum(0) <= DIFFERENT
    return ~edit_region(edit, size)


def score_edit(image: torch.Tensor, edit: Edit) -> dict[str, float]:
    """Strict success (success with preservation within ``PRESERVED``), success (every check
    right), the preservation error outside the edited region, and L1 / L2 to the true edit;
    errors in 0..1 pixel units."""
    image = image.float().cpu()
    size = image.shape[-1]
    success = all(classify(image, edit.target, a, obj) == value for a, obj, value in checks(edit))
    error = (image - render(edit.target, size)).abs() / 2
    kept = preserved_region(edit, size)
    preservation = float(error.mean(0)[kept].mean()) if kept.any() else 0.0  # only a bare new background keeps nothing
    return {"strict": float(success and preservation <= PRESERVED), "success": float(success),
            "preservation": preservation, "l1": float(error.mean()), "l2": float((error**2).mean())}


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
