"""The before/after slider: the ONLY importer of streamlit_image_comparison.

The package re-encodes whatever it gets as quality-100 JPEG into the page, interpolates labels into
JavaScript unescaped, writes to a shared ./temp folder unless `in_memory=True`, and switches Pillow's
decompression-bomb guard off for the whole process. This wrapper passes small previews, fixed labels and
`in_memory=True`, and puts the guard back.
"""

from __future__ import annotations

import io

from PIL import Image
from streamlit_image_comparison import image_comparison

WIDTH = 704  # the package's default width; previews are made at about this size


def compare(before_preview: bytes, after_preview: bytes, *, width: int = WIDTH) -> None:
    """Render the slider from two preview JPEGs (already downscaled, transparency already on a checkerboard)."""
    before = Image.open(io.BytesIO(before_preview))
    after = Image.open(io.BytesIO(after_preview))
    if after.size != before.size:  # the slider stacks both images in one box: same size or it jumps
        after = after.resize(before.size, Image.Resampling.LANCZOS)
    guard = Image.MAX_IMAGE_PIXELS
    try:
        # Fixed labels: the package puts them inside a JavaScript string literal without escaping.
        image_comparison(before, after, label1="Before", label2="After", width=width, in_memory=True,
                         make_responsive=True, show_labels=True)
    finally:
        Image.MAX_IMAGE_PIXELS = guard
