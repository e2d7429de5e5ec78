"""Where a method's data comes from: the toy world's generator (``data.source: toy``) or the
user's files (``captions``, ``instructions``, ``pairs``: training/files.py)."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from ..core.toy.datasets import toy_dataset
from .config import ConfigError, DataConfig
from .files import FileDataset


@dataclass(frozen=True)
class Needs:
    """What a method reads: the kind of rows, and the item keys it needs beyond the kind's
    required ones (``reverse``, ``source_caption``, ``target_caption``)."""

    kind: str  # captions | instructions | pairs
    keys: tuple[str, ...] = ()


def make_dataset(data: DataConfig, needs: Needs, method: str) -> Dataset:
    """The data set for ``needs``, its files checked row by row (before any step trains)."""
    if data.source == "toy":
        if data.frames and needs.kind == "inpaint":
            raise ConfigError(f"'{method}' trains on pictures: the toy world has no inpainting clips; set "
                              "data.frames to 0.")
        return toy_dataset(needs.kind, data.size, data.seed, frames=data.frames)
    if data.frames:
        raise ConfigError(f"data.frames: clips come from the toy world only (data.source: toy), not from "
                          f"{data.source} files.")
    if data.source != needs.kind:
        raise ConfigError(f"'{method}' reads {needs.kind} rows, so 'data.source' must be toy or {needs.kind}, "
                          f"not {data.source}.")
    return FileDataset(data.path, needs.kind, needs.keys, data.size)


def held_out(data: DataConfig, needs: Needs) -> FileDataset | None:
    """The rows ``data.validation`` names, checked like the training rows; None: validate on the
    toy world's validation split."""
    return FileDataset(data.validation, needs.kind, needs.keys, data.size) if data.validation else None


def describe(dataset: Dataset, role: str = "data") -> str:
    """A line for the start of a run: where ``role``'s data comes from and what was skipped."""
    if not isinstance(dataset, FileDataset):
        return f"{role}: the toy world ({type(dataset).__name__}, train split)"
    skipped = f"; {dataset.skipped} skipped: no reverse instruction, and none the pack can derive" \
        if dataset.skipped else ""
    return f"{role}: {len(dataset)} rows of {dataset.path}{skipped}"
