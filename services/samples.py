"""Sample photos the app draws itself, so anyone can try it without a photo of their own."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (1200, 900)


def _shaded(width: int, height: int, colour: tuple[int, int, int], light: float = 0.35) -> Image.Image:
    """A horizontal cylinder-like shading of `colour`: bright left of centre, dark at the edges."""
    x = np.linspace(-1.0, 1.0, width)
    shade = np.clip(np.cos((x + light) * np.pi / 2.2), 0.25, 1.0) * 0.75 + 0.25 * (1 - np.abs(x))
    rgb = np.clip(np.outer(np.ones(height), shade)[..., None] * np.array(colour, float) * 1.1, 0, 255)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _backdrop(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    """A vertical two-tone studio sweep."""
    t = np.linspace(0.0, 1.0, SIZE[1])[:, None, None]
    rgb = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return Image.fromarray(np.repeat(rgb, SIZE[0], axis=1).astype(np.uint8), "RGB")


def _shadow(canvas: Image.Image, box: tuple[int, int, int, int]) -> None:
    """A soft contact shadow ellipse under an object."""
    layer = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(layer).ellipse(box, fill=120)
    canvas.paste((60, 60, 60), (0, 0), layer.filter(ImageFilter.GaussianBlur(18)))


def _mug() -> Image.Image:
    canvas = _backdrop((236, 236, 240), (205, 205, 212))
    _shadow(canvas, (390, 700, 830, 760))
    body = _shaded(340, 400, (196, 72, 58))
    mask = Image.new("L", body.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, 339, 399), radius=38, fill=255)
    handle = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(handle).ellipse((690, 400, 860, 620), outline=255, width=38)
    canvas.paste((170, 60, 50), (0, 0), handle)
    canvas.paste(body, (420, 320), mask)
    ImageDraw.Draw(canvas).ellipse((420, 300, 760, 350), fill=(120, 40, 32), outline=(210, 90, 75), width=6)
    return canvas


def _plant() -> Image.Image:
    canvas = _backdrop((240, 232, 214), (214, 200, 176))
    _shadow(canvas, (420, 730, 790, 790))
    rng = np.random.default_rng(7)
    leaves = ImageDraw.Draw(canvas)
    for _ in range(26):
        cx, cy = rng.normal(600, 110), rng.normal(330, 90)
        w, h = rng.uniform(50, 90), rng.uniform(110, 170)
        green = (int(rng.uniform(40, 80)), int(rng.uniform(110, 160)), int(rng.uniform(50, 80)))
        leaves.ellipse((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=green, outline=(30, 80, 40), width=3)
    pot = _shaded(330, 300, (190, 105, 70))
    mask = Image.new("L", pot.size, 0)
    ImageDraw.Draw(mask).polygon([(0, 0), (329, 0), (290, 299), (40, 299)], fill=255)
    canvas.paste(pot, (440, 460), mask)
    return canvas


def _bottle() -> Image.Image:
    """A cut-out product shot with real transparency, as a PNG from a shop's catalogue would be."""
    canvas = Image.new("RGBA", (700, 900), (0, 0, 0, 0))
    glass = _shaded(300, 480, (70, 130, 190)).convert("RGBA")
    mask = Image.new("L", glass.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, 299, 479), radius=60, fill=235)
    canvas.paste(glass, (200, 330), mask)
    ImageDraw.Draw(canvas).rectangle((300, 200, 400, 340), fill=(40, 40, 48, 255))
    ImageDraw.Draw(canvas).rounded_rectangle((270, 120, 430, 210), radius=14, fill=(200, 170, 90, 255))
    ImageDraw.Draw(canvas).rectangle((240, 520, 460, 640), fill=(245, 245, 240, 255))
    return canvas


SAMPLES = {
    "Red mug on a studio sweep": ("sample-mug.jpg", _mug),
    "Potted plant": ("sample-plant.jpg", _plant),
    "Perfume bottle (transparent PNG)": ("sample-bottle.png", _bottle),
}


@lru_cache(maxsize=len(SAMPLES))
def sample(title: str) -> tuple[str, bytes]:
    """The (file name, bytes) of a sample photo; drawn once per process, the same for everyone."""
    name, draw = SAMPLES[title]
    buf = io.BytesIO()
    image = draw()
    if name.endswith(".png"):
        image.save(buf, "PNG", optimize=True)
    else:
        image.save(buf, "JPEG", quality=90)
    return name, buf.getvalue()
