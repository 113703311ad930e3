"""Draw the contact sheet of the backgrounds that need no prompt (services.compose), for a person to look at.

Rows are real photos (bench.real_photos.photos(): scikit-image's, Grace Hopper's portrait with matplotlib, the
app's samples); columns are the original, white square, a brand colour in portrait 4:5, an own backdrop photo
(scikit-image's rocket, or its coffee for the rocket itself), the blurred original and a dark colour in
landscape 16:9. Each cell is the whole result fitted into its tile on grey, so the frame's shape shows; the
line under it gives the result's size and the edges the subject stays flush with.

    python -m bench.compose_sheet [--sheet PATH] [--tile PX]
"""

from __future__ import annotations

import argparse
import io
import os

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from bench import real_photos
from services import compose, masks, previews

SHEET = os.path.join("artifacts", "compose_contact_sheet.png")
BRAND, DARK = (38, 92, 200), (22, 22, 26)
COLUMNS = ("original", "white square", "brand portrait 4:5", "own backdrop", "blurred original",
           "dark landscape 16:9")
GREY = (150, 150, 150)


def recipes(name: str) -> list[compose.Recipe | None]:
    """The recipe of each column after the original (None) for the photo called `name`."""
    backdrop = Image.fromarray(data.coffee() if name == "rocket" else data.rocket())
    return [None,
            compose.Recipe("colour", framing="square"),
            compose.Recipe("colour", colour=BRAND, framing="portrait"),
            compose.Recipe("backdrop", backdrop=backdrop),
            compose.Recipe("blur"),
            compose.Recipe("colour", colour=DARK, framing="landscape")]


def results(name: str, rgb: np.ndarray) -> list[tuple[Image.Image, str]]:
    """(image, caption) of each column for one photo; the photo goes through the app's path (its bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    raw = buffer.getvalue()
    if name.startswith("sample: "):  # the sample's own bytes: the bottle keeps its transparency
        from services import samples

        raw = samples.sample(name.removeprefix("sample: "))[1]
    photo = Image.open(io.BytesIO(raw))
    photo.load()
    layers = masks.layers(raw)
    out = []
    for recipe in recipes(name):
        if recipe is None:
            out.append((previews.on_checkerboard(photo), f"{photo.size[0]}x{photo.size[1]}"))
            continue
        made = compose.compose(layers, recipe, photo)
        facts = [f"{made.size[0]}x{made.size[1]}"]
        if made.anchored:
            facts.append("flush " + "+".join(made.anchored))
        if made.backdrop_upscaled:
            facts.append("backdrop enlarged")
        if made.subject_scale < 1:
            facts.append(f"subject x{made.subject_scale:.2f}")
        out.append((made.image, ", ".join(facts)))
    return out


def sheet(path: str = SHEET, tile: int = 260) -> str:
    """Write the sheet to `path` and return it."""
    photos = real_photos.photos()
    gap, label, caption = 8, 22, 16
    cell_w, cell_h = tile + gap, tile + caption + gap
    image = Image.new("RGB", (len(COLUMNS) * cell_w + gap, label + len(photos) * (cell_h + label) + gap), "white")
    draw = ImageDraw.Draw(image)
    for column, title in enumerate(COLUMNS):
        draw.text((gap + column * cell_w, 5), title, fill=(0, 0, 0))
    y = label
    for name, rgb in photos.items():
        draw.text((gap, y + 4), name, fill=(0, 0, 0))
        y += label
        for column, (result, text) in enumerate(results(name, rgb)):
            x = gap + column * cell_w
            image.paste(GREY, (x, y, x + tile, y + tile))
            shown = result.copy()
            shown.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            image.paste(shown, (x + (tile - shown.width) // 2, y + (tile - shown.height) // 2))
            draw.text((x, y + tile + 2), text, fill=(60, 60, 60))
        y += cell_h
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    image.save(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compose_sheet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sheet", default=SHEET, help=f"where to write the PNG (default {SHEET})")
    parser.add_argument("--tile", type=int, default=260, help="each cell's square, in pixels")
    args = parser.parse_args(argv)
    print(sheet(args.sheet, args.tile))


if __name__ == "__main__":
    main()
