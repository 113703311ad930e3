"""Colour modes: any mode Pillow decodes brought to RGB, RGBA or L, and what a decoded pixel costs in memory.

Small pure functions on images; never imports streamlit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageMode

HIGH_DEPTH_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_GREY_MODES = {"1", "L", "LA", "La"} | HIGH_DEPTH_MODES
_RGB_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA"}
_BAND_BYTES = 16 * 1024 * 1024  # high-depth pixels are brought to 8 bits this many bytes of rows at a time


def standard_mode(image: Image.Image) -> Image.Image:
    """The image in mode RGB, RGBA or L (new unless it was already), minus an ICC profile that no longer fits."""
    mode = image.mode
    if mode == "RGBA" or (mode in ("RGB", "L") and not image.has_transparency_data):
        return image
    if mode in HIGH_DEPTH_MODES:
        out = to_8bit(image)
    elif image.has_transparency_data:
        out = image.convert("RGBA")
    else:
        out = image.convert("L" if mode == "1" else "RGB")
    if (mode in _GREY_MODES) != (out.mode == "L") or mode not in _GREY_MODES | _RGB_MODES:
        out.info.pop("icc_profile", None)
    return out


def to_8bit(image: Image.Image) -> Image.Image:
    """8-bit L from 16-bit or 32-bit grey: 16-bit scaled by 1/256, floats stretched over their range. Done a
    band of rows at a time in float32 or integers, so it holds little more than the 8-bit result."""
    low, high = image.getextrema()
    width, height = image.size
    rows = max(1, _BAND_BYTES // (width * 4))
    out = np.empty((height, width), np.uint8)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        if image.mode == "F":
            values = np.array(band, dtype=np.float32)
            values -= low
            values *= np.float32(255.0 / ((high - low) or 1.0))
        elif image.mode != "I" or high > 255:  # "I" holding 0-255 data is left as is
            values = np.asarray(band) >> 8
        else:
            values = np.asarray(band)
        np.clip(values, 0, 255, out=out[top:top + rows], casting="unsafe")
    return Image.fromarray(out)


def without_opaque_alpha(image: Image.Image) -> Image.Image:
    """Drop an alpha channel in which every pixel is fully opaque: transparency only when it matters."""
    if image.mode != "RGBA" or image.getextrema()[3][0] < 255:  # no copy of the alpha channel
        return image
    return image.convert("RGB")


def pixel_bytes(mode: str) -> int:
    """Bytes one decoded pixel takes in Pillow: bands × bytes per band, with 8-bit colour held in 4 bytes."""
    try:
        described = ImageMode.getmode(mode)
    except KeyError:
        return 4
    band = int(described.typestr[-1])
    bands = len(described.bands)
    return 4 if band == 1 and bands > 1 else band * bands
