"""The before/after slider: the ONLY importer of streamlit_image_comparison.

The package re-encodes whatever it gets as quality-100 JPEG into the page, interpolates labels into
JavaScript unescaped, writes to a shared ./temp folder unless `in_memory=True`, and switches Pillow's
decompression-bomb guard off for the whole process. This wrapper passes small previews, fixed labels and
`in_memory=True`, loads juxtapose from a pinned version with Subresource Integrity, keeps the guard on,
and keeps the markup the package wrote for each result: a rerun re-sends it without touching a pixel, with
the previews' own JPEGs in place of the heavy re-encodes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import types
import urllib.parse

import streamlit as st
import streamlit_image_comparison as package
from PIL import Image

WIDTH = 704  # the package's default width; previews are made at about this size
CACHE_KEY = "compare.cache"
CACHE_SIZE = 4  # one per place a slider shows (main page, History, Variants), plus one in hand
_DATA_URI = re.compile(r"data:image/jpg;base64,[A-Za-z0-9+/=]+")
# The package loads juxtapose from its CDN's moving `latest`; the slider uses one published version
# instead, byte for byte the npm package's files (jsDelivr serves them unchanged), each checked by the browser
# against its hash. tests/e2e/package.json pins the same version and the browser tests check both hashes.
JUXTAPOSE_VERSION = "1.1.6"
JUXTAPOSE_BASE = f"https://cdn.jsdelivr.net/npm/juxtaposejs@{JUXTAPOSE_VERSION}/build"
JUXTAPOSE_JS_SRI = "sha384-grC+4j078e6D35IfuTEl7Bkxygz5pznv3aMakRi6HCcpKOW8y5v4LkIG3PwcuJoN"
JUXTAPOSE_CSS_SRI = "sha384-t1KsZVxC5WqfBk5nTkDyOeuh08xvaUPT2FHdON+3kLSB8ObkCCp+NkCbOL+NR1A6"
_PINNED_ASSETS = (
    f'<link rel="stylesheet" href="{JUXTAPOSE_BASE}/css/juxtapose.css" integrity="{JUXTAPOSE_CSS_SRI}" '
    'crossorigin="anonymous" referrerpolicy="no-referrer">\n'
    f'<script src="{JUXTAPOSE_BASE}/js/juxtapose.min.js" integrity="{JUXTAPOSE_JS_SRI}" '
    'crossorigin="anonymous" referrerpolicy="no-referrer"></script>\n'
)
_PACKAGE_ASSETS = re.compile(r'<link[^>]*juxtapose[^>]*>|<script[^>]*src="[^"]*juxtapose[^"]*"[^>]*>\s*</script>')
# The frame's height is fixed for the full width; on a narrow screen juxtapose shrinks the slider and
# letterboxes it, so the frame follows the slider's real height instead of leaving blank bands around it.
_FIT_FRAME = """
<script>
(function () {
  function fit() {
    var slider = document.querySelector(".jx-slider");
    var frame = window.frameElement;
    if (!slider || !frame) { return; }
    slider.parentNode.style.paddingTop = "0px";  // juxtapose letterboxes inside a frame taller than it
    var height = Math.ceil(slider.getBoundingClientRect().height);
    if (height > 40 && Math.abs(frame.getBoundingClientRect().height - height) > 2) {
      frame.style.height = height + "px";
    }
  }
  window.addEventListener("load", function () { setTimeout(fit, 50); setTimeout(fit, 500); });
  window.addEventListener("resize", function () { setTimeout(fit, 50); });
})();
</script>
"""


# Juxtapose draws its two images with no alt text and its handle with no name: both are given here, once
# juxtapose has built the slider. `names` is JSON with "<" escaped, so a prompt cannot close the script.
_NAMES = """
<script>
(function () {
  var names = %s;
  function name() {
    var before = document.querySelector(".jx-image.jx-left img"), after = document.querySelector(".jx-image.jx-right img");
    if (before) { before.alt = names.before; }
    if (after) { after.alt = names.after; }
    var handle = document.querySelector(".jx-controller");
    if (handle) { handle.setAttribute("aria-label", names.handle); }
  }
  window.addEventListener("load", function () { name(); setTimeout(name, 50); setTimeout(name, 500); });
})();
</script>
"""


class _PillowView(types.ModuleType):
    """Pillow as the package sees it: everything is Pillow's own, except that the package's
    `Image.MAX_IMAGE_PIXELS = None` (on every call) lands here, so the bomb guard stays on for every other
    thread, even while a slider is being written."""

    def __getattr__(self, name: str):
        return getattr(Image, name)


_written = threading.local()  # the markup the package wrote last, per thread: each render reads its own

# Set once, at import, for the whole process (this module is the package's only user):
# - the package's Pillow is a view whose guard setting is its own (above);
# - its `components.html`, which would render the markup at once, hands it to `_markup` instead, which
#   inlines the previews' own JPEGs, the pinned juxtapose and the frame's fit before it is shown.
package.Image = _PillowView("PIL.Image")
package.components = types.SimpleNamespace(html=lambda html, height=None, **_: setattr(_written, "markup",
                                                                                         (html, height)))


def _names(alt: str) -> str:
    names = {"before": "Before: your photo", "after": alt,
             "handle": "Before and after: move with the left and right arrow keys"}
    return _NAMES % json.dumps(names).replace("<", "\\u003c")


def _jpeg_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _markup(before_preview: bytes, after_preview: bytes, width: int) -> tuple[str, int]:
    """Have the package write the slider's HTML once; return it with our JPEGs inlined, and its height."""
    before = Image.open(io.BytesIO(before_preview))  # sizes from the headers: no pixels decoded
    after = Image.open(io.BytesIO(after_preview))
    if after.size != before.size:  # the slider stacks both images in one box: same size or it jumps
        after = after.convert("RGB").resize(before.size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        after.save(buffer, "JPEG", quality=85)
        after_preview = buffer.getvalue()
    # The package reads only the first image's proportions (for the frame's height); the images it encodes
    # are replaced below, so it gets a blank of the same proportions, as small as they allow (the same ratio
    # of integers gives the same float): decoding both previews and encoding them again at quality 100 cost
    # more than everything else the slider does.
    common = math.gcd(*before.size)
    blank = Image.new("RGB", (before.width // common, before.height // common))
    # Fixed labels: the package puts them inside a JavaScript string literal without escaping.
    package.image_comparison(blank, blank, label1="Before", label2="After", width=width, in_memory=True,
                             make_responsive=True, show_labels=True)
    written, height = _written.markup
    ours = iter([_jpeg_uri(before_preview), _jpeg_uri(after_preview)])
    html = _DATA_URI.sub(lambda _: next(ours), written, count=2)
    html = _PINNED_ASSETS + _PACKAGE_ASSETS.sub("", html)
    return html + _FIT_FRAME, int(height)


def compare(before_preview: bytes, after_preview: bytes, *, key: str, width: int = WIDTH,
            alt: str = "Result") -> None:
    """Render the slider from two preview JPEGs (already downscaled, transparency on a checkerboard);
    `key` names the result, so its markup is written once per session and reused on every rerun; `alt` says
    what the result is ("Result: <prompt>")."""
    cache: dict[str, tuple[str, int]] = st.session_state.setdefault(CACHE_KEY, {})
    if key not in cache:
        html, height = _markup(before_preview, after_preview, width)
        cache[key] = html + _names(alt), height
        while len(cache) > CACHE_SIZE:
            cache.pop(next(iter(cache)))
    html, height = cache[key]
    st.iframe(html, width=width, height=height)
    _forget_parsed_markup()


def _forget_parsed_markup() -> None:
    """Empty urllib's cache of parsed URLs. `st.iframe` first asks whether the markup is a URL, and
    `urllib.parse.urlsplit` (Python 3.11+) keeps its last 128 answers, each with a copy of the markup: a
    slider's is about 0.3 MB with its two JPEGs, so a server that had shown many results held tens of MB of
    them (`python -m bench.memory --diagnose`, as strings). Clearing costs a few microseconds of re-parsing."""
    clear = getattr(urllib.parse.urlsplit, "cache_clear", None)
    if clear is not None:
        clear()
