"""The slider's previews and the gallery's thumbnails of decoded images: at which scale, and how made.

A preview is made at the smallest scale that serves it: pixels (or a JPEG's reduced-scale decode) whose long
edge is at most PREVIEW_SLACK over the preview's edge are the preview as they are, and bigger ones are
box-reduced by the integer factor that lands in that band, with no resampling at all. Only when no integer
factor lands there (a 1500 px photo) are they resampled to the edge. A 2048 px photo's preview is 1024 px: a
third of the work of resampling it to 800, and sharper on a high-density screen.
Plain Python; never imports streamlit.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PREVIEW_EDGE = 800  # slider previews: long edge at least this (or the photo's own, when smaller)
THUMB_EDGE = 256  # gallery thumbnails: the same rule
PREVIEW_SLACK = 1.375
# Previews up to 1.375x bigger than the edge carry up to 1.9x the pixels: at quality 80 a grainy 12 MP
# photo's 1008 px preview is 169 KB (800 px at 85 was 104 KB), and the slider shows it at 704 px or on a
# high-density screen, where the extra pixels show more than the extra quality would.
PREVIEW_QUALITY = 80
_NO_REDUCE_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}  # Image.reduce (and so reducing_gap) refuses these


def previews(image: Image.Image) -> tuple[bytes, bytes]:
    """(slider preview, gallery thumbnail) JPEGs of an already decoded image: one reduction from full size,
    the thumbnail made from the preview, so a result is never decoded again just for these."""
    shown = _shrunk(image, PREVIEW_EDGE)
    return _jpeg(shown), jpeg(shown, THUMB_EDGE)


def jpeg(image: Image.Image, max_edge: int = PREVIEW_EDGE) -> bytes:
    """A light RGB JPEG of decoded pixels at the scale of a `max_edge` preview, transparency shown on a
    checkerboard."""
    return _jpeg(_shrunk(image, max_edge))


def scaled(image: Image.Image, edge: int) -> Image.Image:
    """`image` brought to the size of an `edge` preview: as it is, box-reduced by an integer factor, or (no
    factor lands in the band) box-reduced and then resampled bicubic, which looks like Lanczos at preview size
    for a third of its time (40 dB PSNR against it on a 12 MP photo)."""
    target, how = plan(image.size, edge)
    if how == 1:
        return image
    reducible = image.mode not in _NO_REDUCE_MODES
    if how:
        return image.reduce(how) if reducible else image.resize(target, Image.Resampling.BOX)
    return image.resize(target, Image.Resampling.BICUBIC, reducing_gap=1.0 if reducible else None)


def plan(size: tuple[int, int], edge: int) -> tuple[tuple[int, int], int]:
    """(size, how): an `edge` preview of pixels of `size` is them as they are (how 1), box-reduced by the
    integer factor `how`, or resampled to the edge (how 0) when no factor lands in the band."""
    if max(size) <= edge * PREVIEW_SLACK:
        return size, 1
    factor = max(size) // edge
    reduced = -(-size[0] // factor), -(-size[1] // factor)  # what Image.reduce(factor) gives: sizes rounded up
    if max(reduced) <= edge * PREVIEW_SLACK:
        return reduced, factor
    return fit_size(size, edge), 0


def fit_size(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The size that fits inside edge x edge keeping the aspect ratio; never larger, never below 1 px."""
    width, height = size
    longest = max(width, height)
    if longest <= edge:
        return width, height
    return max(1, round(width * edge / longest)), max(1, round(height * edge / longest))


def on_checkerboard(image: Image.Image, cell: int = 16) -> Image.Image:
    """`image` in RGB with its transparency composited over a light-grey and white checkerboard: a new
    image, or `image` itself when it is RGB already (nothing is drawn on the result)."""
    if not image.has_transparency_data:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    width, height = rgba.size
    odd = (np.arange(height)[:, None] // cell + np.arange(width)[None, :] // cell) % 2
    board = Image.fromarray(np.where(odd, 221, 255).astype(np.uint8)).convert("RGB")
    board.paste(rgba, mask=rgba.getchannel("A"))
    return board


def _shrunk(image: Image.Image, max_edge: int) -> Image.Image:
    """`image` at the scale of a `max_edge` preview, on a checkerboard where it is see-through (RGB or L)."""
    return on_checkerboard(scaled(image, max_edge))


def _jpeg(shown: Image.Image) -> bytes:
    """A preview JPEG of an image already shrunk and flattened by `_shrunk`."""
    buffer = io.BytesIO()
    shown.save(buffer, "JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()
