"""Oracle evaluation of a toy-world model: edit success, preservation and L1/L2 to the true
edit per kind (and the cycle reconstruction error), or caption accuracy for a base model."""

from __future__ import annotations


import torch

from ..core.editing import cycle_edit, edit_pixels
from ..core.models import EditModel
from ..core.samplers import EditSettings, Hooks, sample_toy
from ..core.toy.datasets import EditDataset
from ..core.toy.oracle import caption_correct, score_edit, summarize
from ..core.toy.world import caption, fixed_scenes


@torch.no_grad()
def evaluate_edits(model: EditModel, n: int, size: int, settings: EditSettings, split: str = "heldout",
                   cycle: bool = True) -> dict[str, dict[str, float]]:
    data = EditDataset(size=size, split=split, length=n, with_target=True, seed=0)
    rows = []
    for i in range(n):
        edit, item = data.edit(i), data[i]
        source = item["source"][None]
        if cycle:
            result = cycle_edit(model, source, edit.instruction, edit.reverse, settings)
            scores = score_edit(result.edited[0], edit)
            scores["cycle_l1"] = float((result.reconstruction[0].cpu() - item["source"]).abs().mean() / 2)
        else:
            scores = score_edit(edit_pixels(model, source, edit.instruction, settings)[0], edit)
        rows.append((edit.kind, scores))
    return summarize(rows)


@torch.no_grad()
def evaluate_captions(model: EditModel, n: int, size: int, settings: EditSettings, split: str = "heldout",
                      batch: int = 64) -> dict[str, float]:
    """Share of the model's own text-to-image samples in which every captioned attribute is right."""
    scenes = fixed_scenes(n, held_out=split == "heldout")
    empty = model.encode_text([""])
    correct = []
    for start in range(0, n, batch):
        part = scenes[start:start + batch]
        text = model.encode_text([caption(s) for s in part])
        images = sample_toy(model, None, text, empty, settings, Hooks(), shape=(len(part), 3, size, size))
        correct += [caption_correct(image, scene)["all"] for image, scene in zip(images, part)]
    return {"caption_accuracy": sum(correct) / len(correct), "n": len(correct)}


def format_table(table: dict[str, dict[str, float]]) -> str:
    metrics = [m for m in next(iter(table.values())) if m != "n"]
    lines = ["kind        " + "".join(f"{m:>13}" for m in metrics) + "      n"]
    for kind, row in table.items():
        lines.append(f"{kind:<12}" + "".join(f"{row[m]:>13.3f}" for m in metrics) + f"{row['n']:>7}")
    return "\n".join(lines)
