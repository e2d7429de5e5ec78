"""Oracle evaluation of a toy-world model: edit success, preservation and L1/L2 to the true
edit per kind (and the cycle reconstruction error), edits shown by one pair and made on another
scene, inpainting tasks, or caption accuracy for a base model."""

from __future__ import annotations

import torch

from ..core.editing import cycle_edit, edit_pixels
from ..core.repaint import Area, composite, plan, repaint
from ..core.loc import LocHypernetwork
from ..core.models import EditModel
from ..core.models.toy import sample_toy
from ..core.samplers import EditSettings, Hooks
from ..core.toy.chance import BASELINES, chance_pictures
from ..core.toy.clips import fixed_clips, score_clip
from ..core.toy.datasets import ClipEditDataset, EditDataset
from ..core.video import Chunking, edit_clips, edit_video
from ..core.toy.edits import split_edits, transfer_cases
from ..core.toy.inpainting import score_inpaint, split_tasks, task_mask
from ..core.toy.oracle import caption_correct, score_edit, summarize
from ..core.toy.render import render
from ..core.toy.world import caption, fixed_scenes


@torch.no_grad()
def evaluate_edits(model: EditModel, n: int, size: int, settings: EditSettings, split: str = "test",
                   cycle: bool = True, grid: bool = False, batch: int = 1
                   ) -> tuple[dict[str, dict[str, float]], torch.Tensor | None]:
    """The oracle's scores of ``n`` distinct edits of ``split`` per kind (with ``cycle``, also the
    reverse edit's reconstruction error). Returns the table and, with ``grid``, the pictures
    (source, edited, true edit) of every edit. One edit at a time (each from the seed's own noise,
    as the reported tables), or, without ``cycle``, ``batch`` edits a pass (validation while training)."""
    if batch > 1 and cycle:
        raise ValueError("Batched evaluation scores forward edits only: pass cycle=False.")
    data = EditDataset(size=size, split=split, length=n, with_target=True, seed=0)
    if batch > 1:
        return _evaluate_batched(model, data, settings, batch, grid)
    rows, pictures = [], []
    for i in range(n):
        edit, item = data.edit(i), data[i]
        source = item["source"][None]
        if cycle:
            result = cycle_edit(model, source, edit.instruction, edit.reverse, settings)
            edited = result.edited[0].cpu()
            scores = score_edit(edited, edit)
            scores["cycle_l1"] = float((result.reconstruction[0].cpu() - item["source"]).abs().mean() / 2)
        else:
            edited = edit_pixels(model, source, edit.instruction, settings)[0].cpu()
            scores = score_edit(edited, edit)
        rows.append((edit.kind, scores))
        if grid:
            pictures += [item["source"], edited, item["target"]]
    return summarize(rows), torch.stack(pictures) if grid else None


def _evaluate_batched(model: EditModel, data: EditDataset, settings: EditSettings, batch: int,
                      grid: bool) -> tuple[dict[str, dict[str, float]], torch.Tensor | None]:
    rows, pictures = [], []
    for start in range(0, len(data), batch):
        index = range(start, min(start + batch, len(data)))
        edits, items = [data.edit(i) for i in index], [data[i] for i in index]
        sources = torch.stack([item["source"] for item in items])
        edited = edit_pixels(model, sources, [edit.instruction for edit in edits], settings).cpu()
        for edit, item, picture in zip(edits, items, edited):
            rows.append((edit.kind, score_edit(picture, edit)))
            if grid:
                pictures += [item["source"], picture, item["target"]]
    return summarize(rows), torch.stack(pictures) if grid else None


def evaluate_chance(n: int, size: int, split: str = "test", seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """The oracle's scores for pictures that make no real edit (``core/toy/chance.py``), on the
    same edits ``evaluate_edits`` scores: ``{baseline: table}``."""
    generator, rows = torch.Generator().manual_seed(seed), {b: [] for b in BASELINES}
    for edit in split_edits(n, split):
        for name, picture in chance_pictures(edit, size, generator).items():
            rows[name].append((edit.kind, score_edit(picture, edit)))
    return {name: summarize(r) for name, r in rows.items()}


@torch.no_grad()
def evaluate_transfer(model: EditModel, n: int, size: int, settings: EditSettings,
                      hypernetwork: LocHypernetwork | None = None, strength: float = 1.0,
                      split: str = "test") -> tuple[dict[str, dict[str, float]], torch.Tensor]:
    """A pair (A, A') of ``split`` shows an edit; the same instruction is made on another scene B
    of the split and scored against the oracle's B'. With a hypernetwork the edit is the LoRA it makes from
    (A, A') and the instruction is empty; without, the model reads the instruction. (No cycle:
    the pair's reverse, e.g. "back to a sky background", is not B's.)
    Returns the table and a grid of (A, A', B, edited B, true B') per case."""
    rows, pictures = [], []
    for pair, quad in transfer_cases(n, split):
        before, after, source = (render(s, size)[None] for s in (pair.source, pair.target, quad.source))
        editor, instruction = model, quad.instruction
        if hypernetwork is not None:
            delta = hypernetwork(before.to(model.device), after.to(model.device))
            editor, instruction = model.with_edit_lora(delta, strength), ""
        edited = edit_pixels(editor, source, instruction, settings)[0].cpu()
        rows.append((quad.kind, score_edit(edited, quad)))
        pictures += [before[0], after[0], source[0], edited, render(quad.target, size)]
    return summarize(rows), torch.stack(pictures)


@torch.no_grad()
def evaluate_inpainting(model: EditModel, n: int, size: int, settings: EditSettings, split: str = "test",
                        grid: bool = False) -> tuple[dict[str, dict[str, float]], torch.Tensor | None]:
    """The oracle's scores of ``n`` distinct inpainting tasks of ``split`` per kind, each repainted as
    Mask Inpaint does (the mask exactly, no grow or feather: the oracle judges the hole). Returns the
    table and, with ``grid``, (masked input, result, truth) per task."""
    rows, pictures = [], []
    area = Area(grow=0, feather=0, context=size, size=size)
    for task in split_tasks(n, split):
        given, truth = render(task.scene, size), render(task.truth, size)
        mask = task_mask(task, size)[None]
        todo = plan(mask, area)
        painted = repaint(model, given[None].to(model.device), todo, task.prompt, settings)
        result = composite(given[None], [(i, box, crop.float().cpu()) for i, box, crop in painted], todo.weights)[0]
        rows.append((task.kind, score_inpaint(result, task, given)))
        if grid:
            pictures += [given * (1 - mask), result, truth]
    return summarize(rows), torch.stack(pictures) if grid else None


@torch.no_grad()
def evaluate_captions(model: EditModel, n: int, size: int, settings: EditSettings, split: str = "test",
                      batch: int = 64, grid: bool = False) -> tuple[dict[str, float], torch.Tensor | None]:
    """Share of the model's own text-to-image samples of ``n`` captions of ``split`` in which
    every captioned attribute is right; and, with ``grid``, the samples."""
    scenes = fixed_scenes(n, split)
    correct, samples = [], []
    for start in range(0, n, batch):
        part = scenes[start:start + batch]
        images = sample_captions(model, [caption(s) for s in part], size, settings)
        correct += [caption_correct(image, scene)["all"] for image, scene in zip(images, part)]
        if grid:
            samples.append(images.cpu())
    return {"caption_accuracy": sum(correct) / len(correct), "n": len(correct)}, torch.cat(samples) if grid else None


@torch.no_grad()
def edit_rows(model: EditModel, rows, n: int, settings: EditSettings,
              hypernetwork: LocHypernetwork | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """Edit the first ``n`` rows of a file data set (``instructions`` or ``pairs``): each source by
    its instruction or, with a hypernetwork, by the LoRA its own pair makes; the mean L1 to the
    row's after picture where rows have one. Returns the metrics and a grid of (source, edited
    [, after]) per row."""
    pictures, errors = [], []
    for i in range(min(n, len(rows))):
        row = rows[i]
        editor, instruction = model, row["instruction"]
        if hypernetwork is not None:
            delta = hypernetwork(row["source"][None].to(model.device), row["target"][None].to(model.device))
            editor, instruction = model.with_edit_lora(delta, 1.0), ""
        edited = edit_pixels(editor, row["source"][None], instruction, settings)[0].cpu()
        pictures += [row["source"], edited]
        if "target" in row:
            pictures.append(row["target"])
            errors.append(float((edited - row["target"]).abs().mean() / 2))
    return ({"all/l1": sum(errors) / len(errors)} if errors else {}), torch.stack(pictures)


@torch.no_grad()
def sample_captions(model: EditModel, captions: list[str], size: int, settings: EditSettings) -> torch.Tensor:
    """A toy model's text-to-image samples of ``captions``, [N,3,size,size]."""
    text, empty = model.encode_text(captions), model.encode_text([""])
    return sample_toy(model, None, text, empty, settings, Hooks(), shape=(len(captions), 3, size, size))


@torch.no_grad()
def evaluate_clip_captions(model: EditModel, n: int, size: int, frames: int, settings: EditSettings,
                           split: str = "test", batch: int = 16, grid: bool = False
                           ) -> tuple[dict[str, float], torch.Tensor | None]:
    """A video model's text-to-video samples of ``n`` clip captions of ``split``: the share of frames
    in which every captioned attribute of that frame's scene is right; with ``grid``, every frame."""
    clips = fixed_clips(n, split)
    correct, pictures = [], []
    for start in range(0, n, batch):
        part = clips[start:start + batch]
        text, empty = model.encode_text([c.caption for c in part]), model.encode_text([""])
        videos = model.sample(None, text, empty, settings, Hooks(), shape=(len(part), 3, frames, size, size)).cpu()
        for video, clip in zip(videos, part):
            correct += [caption_correct(video[:, f], scene)["all"] for f, scene in enumerate(clip.frames(frames))]
            if grid:
                pictures += list(video.transpose(0, 1))
    return ({"frame_caption_accuracy": sum(correct) / len(correct), "n": n},
            torch.stack(pictures) if grid else None)


@torch.no_grad()
def evaluate_clip_edits(model: EditModel, n: int, size: int, frames: int, settings: EditSettings,
                        split: str = "test", batch: int = 16, grid: bool = False, picture_editor: str = "video-edit"
                        ) -> tuple[dict[str, dict[str, float]], torch.Tensor | None]:
    """Edits of ``n`` distinct clip edits of ``split`` scored per kind by the clip oracle (``score_clip``:
    per-frame strict success, success, preservation, every-frame strict success, flicker); with
    ``grid``, (source, edited, true) first and last frames. A video model edits ``batch`` clips a
    pass; a picture editor edits each clip's frames as Video Edit does ("video-edit": shared noise,
    anchor) or as Edit Image edits a batch ("independent")."""
    data = ClipEditDataset(size=size, frames=frames, split=split, length=n, with_target=True)
    rows, pictures = [], []
    for start in range(0, n, batch):
        index = range(start, min(start + batch, n))
        edits, items = [data.edit(i) for i in index], [data[i] for i in index]
        sources = torch.stack([item["source"] for item in items])
        if model.frames:
            edited = edit_clips(model, sources, [e.instruction for e in edits], settings).cpu()
        else:
            edited = torch.stack([_frame_by_frame(model, clip, e.instruction, settings, picture_editor)
                                  for clip, e in zip(sources, edits)])
        for edit, item, clip in zip(edits, items, edited):
            rows.append((edit.kind, score_clip(clip, edit)))
            if grid:
                pictures += [item["source"][:, f] for f in (0, -1)] + [clip[:, f] for f in (0, -1)] + \
                            [item["target"][:, f] for f in (0, -1)]
    return summarize(rows), torch.stack(pictures) if grid else None


def _frame_by_frame(model: EditModel, clip: torch.Tensor, instruction: str, settings: EditSettings,
                    how: str) -> torch.Tensor:
    frames = clip.transpose(0, 1)  # [F, 3, H, W]
    if how == "independent":
        edited = edit_pixels(model, frames, instruction, settings)
    else:
        edited = edit_video(model, frames, instruction, settings, Chunking(len(frames), 0, anchor=True))
    return edited.cpu().transpose(0, 1)


def format_table(table: dict[str, dict[str, float]]) -> str:
    metrics = [m for m in next(iter(table.values())) if m != "n"]
    lines = ["kind        " + "".join(f"{m:>13}" for m in metrics) + "      n"]
    for kind, row in table.items():
        lines.append(f"{kind:<12}" + "".join(f"{row[m]:>13.3f}" for m in metrics) + f"{row['n']:>7}")
    return "\n".join(lines)
