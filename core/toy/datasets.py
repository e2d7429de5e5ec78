"""The toy world's data sets. Item ``i`` of a data set is the same for every run with the same
seed, an item of a split renders scenes of that split only (for edits: the source and the edited
scene), and nothing is stored on disk."""

from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset

from .clips import ClipEdit, sample_clip, sample_clip_edit, split_clip_edits
from .edits import KINDS, Edit, edit_region, sample_edit, split_edits
from .inpainting import KINDS as INPAINT_KINDS, InpaintTask, sample_task, split_tasks, task_mask
from .render import render
from .world import caption, check_split, sample_split


class _Toy(Dataset):
    def __init__(self, size: int = 16, length: int = 100_000, seed: int = 0, split: str = "train") -> None:
        self.size, self.length, self.seed, self.split = size, length, seed, check_split(split)

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{index}")


class CaptionDataset(_Toy):
    """(image [3,S,S] in -1..1, caption): what a text-to-image base learns from."""

    def __getitem__(self, index: int) -> dict:
        scene = sample_split(self._rng(index), self.split)
        return {"image": render(scene, self.size), "caption": caption(scene)}


class EditDataset(_Toy):
    """Source images with an instruction, its reverse and both captions, but no edited
    image: the data unpaired methods learn from. ``with_target=True`` adds the true edit,
    for the supervised baseline, LoC's pairs and evaluation. The training split draws edits at
    random; a held-out split serves its fixed list of distinct edits (``split_edits``)."""

    held_out = staticmethod(split_edits)  # a held-out split's fixed list
    draw = staticmethod(sample_edit)  # a training edit

    def __init__(self, *args, with_target: bool = False, kinds: tuple[str, ...] = KINDS, **kw) -> None:
        super().__init__(*args, **kw)
        self.with_target, self.kinds = with_target, kinds
        self._held = self.held_out(self.length, self.split, self.seed, kinds) if self.split != "train" else None

    def edit(self, index: int) -> Edit:
        if self._held is not None:
            return self._held[index]
        return self.draw(self._rng(index), "train", self.kinds)

    def render(self, scene) -> torch.Tensor:
        return render(scene, self.size)

    def truth(self, edit) -> dict:
        """What ``with_target`` adds: the true edit and the region it changes."""
        return {"target": self.render(edit.target), "mask": edit_region(edit, self.size)}

    def __getitem__(self, index: int) -> dict:
        edit = self.edit(index)
        item = {"source": self.render(edit.source), "instruction": edit.instruction, "reverse": edit.reverse,
                "source_caption": edit.source_caption, "target_caption": edit.target_caption, "kind": edit.kind}
        return item | self.truth(edit) if self.with_target else item


class InpaintDataset(_Toy):
    """Masked reconstruction, the way inpainters learn: a picture, a MASK (1 = regenerate) and the
    prompt that names what the hole shows, from the tasks of ``core/toy/inpainting.py``. The picture
    is the task's truth: a task's input differs from it only inside the hole (an erased object lies
    within its mask), so masked, it *is* the task's input, and no edited pair is ever rendered. The
    training split draws tasks at random; a held-out split serves its fixed list (``split_tasks``)."""

    def __init__(self, *args, kinds: tuple[str, ...] = INPAINT_KINDS, **kw) -> None:
        super().__init__(*args, **kw)
        self.kinds = kinds
        self._held = split_tasks(self.length, self.split, self.seed, kinds) if self.split != "train" else None

    def task(self, index: int) -> InpaintTask:
        if self._held is not None:
            return self._held[index]
        return sample_task(self._rng(index), "train", self.kinds)

    def __getitem__(self, index: int) -> dict:
        task = self.task(index)
        return {"image": render(task.truth, self.size), "mask": task_mask(task, self.size)[None],
                "prompt": task.prompt, "kind": task.kind}


def stack(items: list[dict]) -> dict:
    """A DataLoader collate: tensors stacked, strings kept as lists."""
    return {k: torch.stack([i[k] for i in items]) if torch.is_tensor(items[0][k]) else [i[k] for i in items]
            for k in items[0]}


def toy_dataset(kind: str, size: int = 16, seed: int = 0, split: str = "train", length: int = 100_000,
                frames: int = 0) -> Dataset:
    """The toy data set that gives ``kind`` items: "captions", "instructions" (sources without an
    edited picture), "pairs" (with it) or "inpaint" (pictures, masks and prompts, without the true
    result); with ``frames``, clips of that many frames instead of pictures (no inpainting)."""
    if frames:
        if kind == "captions":
            return ClipDataset(size=size, length=length, seed=seed, split=split, frames=frames)
        if kind == "inpaint":
            raise ValueError("The toy world has no inpainting clips.")
        return ClipEditDataset(size=size, length=length, seed=seed, split=split, frames=frames,
                               with_target=kind == "pairs")
    if kind == "captions":
        return CaptionDataset(size=size, length=length, seed=seed, split=split)
    if kind == "inpaint":
        return InpaintDataset(size=size, length=length, seed=seed, split=split)
    return EditDataset(size=size, length=length, seed=seed, split=split, with_target=kind == "pairs")


class ClipDataset(_Toy):
    """(video [3,F,S,S] in -1..1, caption) of toy clips (``core/toy/clips.py``): what a
    text-to-video base learns from."""

    def __init__(self, *args, frames: int = 8, **kw) -> None:
        super().__init__(*args, **kw)
        self.frames = frames

    def __getitem__(self, index: int) -> dict:
        clip = sample_clip(self._rng(index), self.split)
        return {"video": clip.render(self.frames, self.size), "caption": clip.caption}


class ClipEditDataset(EditDataset):
    """Source clips [3,F,S,S] with an instruction for every frame, its reverse and both captions, no
    edited clip (``with_target=True`` adds it, for evaluation): ``EditDataset`` for video."""

    held_out = staticmethod(split_clip_edits)
    draw = staticmethod(sample_clip_edit)

    def __init__(self, *args, frames: int = 8, **kw) -> None:
        self.frames = frames
        super().__init__(*args, **kw)

    def render(self, clip) -> torch.Tensor:
        return clip.render(self.frames, self.size)

    def truth(self, edit: ClipEdit) -> dict:
        return {"target": self.render(edit.target)}
