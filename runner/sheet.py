"""Side-by-side sheets of images with captions (the demo's summary and workflow thumbnails)."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

CAPTION = 14


def side_by_side(images: Sequence[Image.Image], labels: Sequence[str], height: int = 192) -> Image.Image:
    """Scale every image to ``height`` (nearest neighbour, so small pictures stay crisp) and
    place them left to right with a caption strip underneath."""
    tiles = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height), Image.NEAREST)
             for im in images]
    gap = 8
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) + 1), height + CAPTION + 2 * gap),
                      (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    x = gap
    for tile, label in zip(tiles, labels):
        sheet.paste(tile, (x, gap))
        draw.text((x, gap + height + 2), label, fill=(230, 230, 230))
        x += tile.width + gap
    return sheet
