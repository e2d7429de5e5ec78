"""The user's own pictures as training data: JSONL files whose rows name pictures (relative to
the file), or a folder of pictures with same-name ``.txt`` captions.

Every row is checked when the data set is made, before the first step: a bad JSON line, a
missing field, a missing or unreadable picture each stop the run naming the file and line.
Pictures are read when an item is asked for (in DataLoader workers when ``data.workers`` > 0),
resized on the short side and centre-cropped to ``size`` × ``size``. An item has the keys the
toy world's data sets give (``core/toy/datasets.py``), so a method reads both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..core.images import pil_to_pixels, pixels_to_pil
from ..core.instructions import NotInvertible, reverse_or_invert
from ..core.toy.datasets import toy_dataset
from .config import ConfigError

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# kind -> {row field: (the item key it becomes, required)}
FIELDS = {
    "captions": {"image": ("image", True), "caption": ("caption", True)},
    "instructions": {"image": ("source", True), "instruction": ("instruction", True),
                     "reverse_instruction": ("reverse", False), "caption": ("source_caption", False),
                     "edited_caption": ("target_caption", False)},
    "pairs": {"before": ("source", True), "after": ("target", True), "instruction": ("instruction", True),
              "reverse_instruction": ("reverse", False)},
}
PICTURE_FIELDS = ("image", "before", "after")


@dataclass(frozen=True)
class Row:
    where: str  # "file:line", for messages
    pictures: dict[str, Path]  # item key -> file
    texts: dict[str, str]  # item key -> text


class FileDataset(Dataset):
    """The rows of ``path`` of ``kind``, each with the item ``keys`` a method needs beyond the
    kind's required ones (``reverse``, ``source_caption``, ...); item ``i`` reads row ``i``'s pictures."""

    def __init__(self, path: str | Path, kind: str, keys: tuple[str, ...], size: int) -> None:
        self.size, self.path = size, Path(path)
        rows = read_rows(self.path, kind)
        self.rows, self.skipped = _usable(rows, kind, keys)
        # every item has the same keys, whichever optional fields its row has
        self.texts = [key for field, (key, required) in FIELDS[kind].items()
                      if required and field not in PICTURE_FIELDS]
        self.texts += [key for key in keys if key not in self.texts]
        if not self.rows:
            raise ConfigError(f"{path}: none of its {len(rows)} rows can be used ({self.skipped} without a "
                              "reverse instruction the pack can derive). Add 'reverse_instruction' to the rows.")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        pictures = {key: load_picture(path, self.size, row.where) for key, path in row.pictures.items()}
        return pictures | {key: row.texts[key] for key in self.texts}


def read_rows(path: Path, kind: str) -> list[Row]:
    """Every row of ``path`` (JSONL, or for captions a folder of pictures and .txt files), each
    checked: required fields present and text, pictures present and readable."""
    if not path.exists():
        raise ConfigError(f"'data.path' points at {path}, which does not exist.")
    if path.is_dir():
        if kind != "captions":
            raise ConfigError(f"'data.path' is the folder {path}; {kind} come from a JSONL file only.")
        return _caption_folder(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file: 'data.path' names a JSONL file (one JSON row a line).") from None
    rows, checked = [], set()
    for number, line in enumerate(lines, 1):
        if line.strip():
            rows.append(_row(line, kind, path, number, checked))
    if not rows:
        raise ConfigError(f"{path} holds no rows.")
    return rows


def _row(line: str, kind: str, path: Path, number: int, checked: set[Path]) -> Row:
    where = f"{path}:{number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not a JSON object ({err.msg}). Each line holds one row, e.g. "
                          f"{_example(kind)}.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: not a JSON object. Each line holds one row, e.g. {_example(kind)}.")
    fields = FIELDS[kind]
    for field, (_, required) in fields.items():
        if field not in raw:
            if required:
                raise ConfigError(f"{where}: the row has no '{field}' (a {kind} row needs "
                                  f"{', '.join(f for f, (_, r) in fields.items() if r)}).")
        elif not isinstance(raw[field], str) or (required and not raw[field].strip()):
            raise ConfigError(f"{where}: '{field}' must be non-empty text, not {json.dumps(raw[field])[:60]}.")
    present = {field: raw[field].strip() for field in fields if field in raw and raw[field].strip()}
    pictures = {fields[f][0]: _picture(path.parent / v, where, checked) for f, v in present.items()
                if f in PICTURE_FIELDS}
    texts = {fields[f][0]: v for f, v in present.items() if f not in PICTURE_FIELDS}
    return Row(where, pictures, texts)


def _caption_folder(folder: Path) -> list[Row]:
    pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES and p.is_file())
    if not pictures:
        raise ConfigError(f"The folder {folder} holds no pictures ({', '.join(PICTURE_SUFFIXES)}).")
    rows = []
    for picture in pictures:
        text = picture.with_suffix(".txt")
        if not text.is_file():
            raise ConfigError(f"{picture}: no caption file {text.name} beside it.")
        caption = text.read_text(encoding="utf-8").strip()
        if not caption:
            raise ConfigError(f"{text}: the caption is empty.")
        rows.append(Row(str(picture), {"image": _picture(picture, str(picture), set())}, {"caption": caption}))
    return rows


def _picture(path: Path, where: str, checked: set[Path]) -> Path:
    """``path`` if it is a picture PIL can read (its header and data checked, not decoded); a
    picture in ``checked`` was read already (several rows may name one)."""
    if path in checked:
        return path
    if not path.is_file():
        raise ConfigError(f"{where}: the picture {path} does not exist.")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ConfigError(f"{where}: the picture {path} cannot be read ({err}).") from None
    checked.add(path)
    return path


def _usable(rows: list[Row], kind: str, keys: tuple[str, ...]) -> tuple[list[Row], int]:
    """The rows with every one of ``keys``; a missing reverse instruction is derived, and a
    row whose reverse cannot be is skipped (counted); any other missing key stops the run."""
    usable, skipped = [], 0
    for row in rows:
        if "reverse" in keys and "reverse" not in row.texts:
            try:
                reverse = reverse_or_invert(row.texts["instruction"], "")
            except NotInvertible:
                skipped += 1
                continue
            row = Row(row.where, row.pictures, {**row.texts, "reverse": reverse})
        missing = [key for key in keys if key not in row.texts]
        if missing:
            field = next(f for f, (key, _) in FIELDS[kind].items() if key == missing[0])
            raise ConfigError(f"{row.where}: this method needs '{field}' in every row.")
        usable.append(row)
    return usable, skipped


def load_picture(path: Path, size: int, where: str) -> torch.Tensor:
    """[3,size,size] in -1..1: RGB, the short side resized to ``size``, centre-cropped."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError as err:  # changed since it was checked
        raise ConfigError(f"{where}: the picture {path} cannot be read ({err}).") from None
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    if (w, h) != image.size:
        image = image.resize((w, h), Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)
    left, top = (w - size) // 2, (h - size) // 2
    return pil_to_pixels(image.crop((left, top, left + size, top + size)))


def _example(kind: str) -> str:
    return {"captions": '{"image": "a.png", "caption": "a red car"}',
            "instructions": '{"image": "a.png", "instruction": "make the car blue"}',
            "pairs": '{"before": "a.png", "after": "b.png", "instruction": "make the car blue"}'}[kind]


def write_toy_data(kind: str, out: Path, n: int, size: int = 16, split: str = "train", seed: int = 0) -> Path:
    """Items ``0..n-1`` of the toy world's ``split`` as ``kind`` files: PNGs in ``out/images`` and
    ``out/<kind>.jsonl`` (the formats' worked example; a run from them equals a run from the
    generator up to the PNGs' 8-bit rounding). Returns the JSONL file."""
    data = toy_dataset(kind, size, seed, split, length=n)
    (out / "images").mkdir(parents=True, exist_ok=True)
    fields = {key: field for field, (key, _) in FIELDS[kind].items()}
    rows = []
    for i in range(n):
        item, row = data[i], {}
        for key, field in fields.items():
            if field in PICTURE_FIELDS:
                name = f"images/{i:06d}-{field}.png"
                pixels_to_pil(item[key]).save(out / name)
                row[field] = name
            else:
                row[field] = item[key]
        rows.append(json.dumps(row))
    path = out / f"{kind}.jsonl"
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path
