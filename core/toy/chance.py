"""Pictures that make no real edit, scored like a model's to show what each number is worth:
the unedited source, noise, fills, and (for moves) a copy instead of a move."""

from __future__ import annotations

from dataclasses import replace

import torch

from .edits import Edit
from .render import background, render
from .world import COLOURS

BASELINES = ("source", "noise", "mean fill", "edit fill", "copy")


def chance_pictures(edit: Edit, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """[3,size,size] pictures in -1..1 by name (``BASELINES``): "edit fill" for every kind but
    removal (whose bare background may be the right answer), "copy" only for a move."""
    source = render(edit.source, size)
    pictures = {"source": source,
                "noise": torch.rand((3, size, size), generator=generator) * 2 - 1,
                "mean fill": source.mean((1, 2), keepdim=True).expand(3, size, size).clone()}
    if edit.kind != "remove":
        pictures["edit fill"] = _edit_fill(edit, size)
    if edit.kind == "move":  # the object drawn where it should go, and left where it was
        gone = next(o for o in edit.source.objects if o not in edit.target.objects)
        pictures["copy"] = render(replace(edit.target, objects=edit.target.objects + (gone,)), size)
    return pictures


def _edit_fill(edit: Edit, size: int) -> torch.Tensor:
    """The whole picture in what the edit asks for: the new background, else the edited object's
    colour."""
    if edit.obj is None:
        return background(edit.target.background, size)
    colour = torch.tensor(COLOURS[edit.obj.colour], dtype=torch.float32).view(3, 1, 1) / 127.5 - 1
    return colour.expand(3, size, size).clone()
