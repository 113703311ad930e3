"""Photo-like test pictures, made here so nothing is downloaded.

A flat colour compresses to almost nothing and would flatter every figure, so each picture mixes what a
phone photo holds: smooth light falloff, a textured backdrop (several octaves of noise, like a wall or
fabric), a textured subject with a hard edge, and sensor grain. As quality-90 JPEGs a 2048 × 1536 one is
about 1.1 MB and a 4032 × 3024 one about 4.2 MB, like a 12 MP phone photo.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PHONE_12MP = (4032, 3024)
FITS = (2048, 1536)  # already inside Novita's 2048 x 2048 box: the app sends it untouched
TWO_MP = (1632, 1224)
QUALITY = 90
_LOW_EDGE = 1024  # the smooth part of the scene is drawn this wide, then scaled up
_TEXTURE, _GRAIN = 40, 8  # fine-texture and grain amplitudes (0-255 scale), tuned for realistic JPEG sizes


@lru_cache(maxsize=3)
def _scene(size: tuple[int, int]) -> np.ndarray:
    """The shared base scene at `size`, HxWx3 uint8 (the slow part, made once per size)."""
    width, height = size
    rng = np.random.default_rng(12345)
    lw, lh = _LOW_EDGE, max(2, _LOW_EDGE * height // width)
    texture = np.zeros((lh, lw), np.float32)
    for cells_across, weight in ((8, 40.0), (32, 22.0), (128, 14.0), (512, 9.0)):
        cells = rng.random((max(2, lh * cells_across // lw), cells_across), dtype=np.float32)
        layer = Image.fromarray(cells).resize((lw, lh), Image.Resampling.BICUBIC)
        texture += (np.asarray(layer, np.float32) - 0.5) * weight
    ys = np.linspace(0.0, 1.0, lh, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, lw, dtype=np.float32)[None, :]
    light = 150.0 + 70.0 * np.exp(-((xs - 0.35) ** 2 + (ys - 0.3) ** 2) / 0.25) - 40.0 * ys
    low = np.empty((lh, lw, 3), np.float32)
    for channel, (gain, offset) in enumerate(((1.0, 10.0), (0.92, 0.0), (0.8, -15.0))):
        low[..., channel] = light * gain + offset + texture * (0.8 + 0.2 * channel)
    smooth = Image.fromarray(np.clip(low, 0, 255).astype(np.uint8), "RGB").resize(size, Image.Resampling.BICUBIC)
    fine = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L").filter(ImageFilter.BoxBlur(1))
    detail = (np.asarray(fine, np.int16) - 128) * _TEXTURE // 64
    detail += rng.integers(-_GRAIN, _GRAIN + 1, (height, width), dtype=np.int16)
    return np.clip(np.asarray(smooth, np.int16) + detail[..., None], 0, 255).astype(np.uint8)


def _tinted(image: Image.Image, tint) -> Image.Image:
    return image.point([max(0, min(255, value + int(t))) for t in tint for value in range(256)])


def photo(size: tuple[int, int] = FITS, seed: int = 0, quality: int = QUALITY) -> bytes:
    """A photo-like JPEG of `size`; each `seed` gives a different picture (framing, tint, subject)."""
    width, height = size
    rng = np.random.default_rng(seed)
    shift = (int(rng.integers(0, height)), int(rng.integers(0, width)))
    backdrop = Image.fromarray(np.roll(_scene(size), shift, axis=(0, 1)), "RGB")
    image = _tinted(backdrop, rng.integers(-18, 18, 3))
    subject = _tinted(backdrop.transpose(Image.Transpose.ROTATE_180), rng.integers(-90, 90, 3))
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.4, 0.6)
    rx, ry = width * rng.uniform(0.12, 0.2), height * rng.uniform(0.2, 0.3)
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    draw.rectangle((cx - rx * 0.3, cy + ry * 0.6, cx + rx * 0.3, cy + ry * 1.4), fill=255)
    image.paste(subject, mask=mask)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
