"""The README's touch-up picture: a photo whose cut-out took a stray disk on the wall for subject, the cut-out
before, the one Remove stroke, and the cut-out after (`python -m bench.touchup_sheet docs/touchup.png`)."""

from __future__ import annotations

import io
import sys

from PIL import Image, ImageDraw
from skimage import data

from services import masks, previews, touchup

TILE = 320


def photo() -> Image.Image:
    picture = Image.fromarray(data.astronaut())
    draw = ImageDraw.Draw(picture)
    draw.ellipse((380, 10, 500, 130), fill=(250, 200, 20))
    draw.rectangle((420, 50, 460, 90), fill=(20, 20, 160))
    return picture


def sheet(path: str) -> None:
    picture = photo()
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    before = masks.layers(buffer.getvalue())
    stroke = touchup.Stroke(keep=False, width=24, points=((385, 60), (495, 60)))
    after = touchup.refine(picture, before, [stroke])
    painted = picture.copy()
    ImageDraw.Draw(painted).line(((385, 60), (495, 60)), fill=(220, 40, 40), width=24)
    tiles = [painted, _cut(before), _cut(after)]
    out = Image.new("RGB", (TILE * 3 + 20, TILE), (255, 255, 255))
    for n, tile in enumerate(tiles):
        out.paste(tile.resize((TILE, TILE), Image.Resampling.LANCZOS), (n * (TILE + 10), 0))
    out.save(path)


def _cut(layers: masks.Layers) -> Image.Image:
    rgba = Image.fromarray(layers.subject).convert("RGBA")
    rgba.putalpha(Image.fromarray(layers.alpha))
    return previews.on_checkerboard(rgba)


if __name__ == "__main__":
    sheet(sys.argv[1] if len(sys.argv) > 1 else "docs/touchup.png")
