"""From uploaded photo bytes to a payload Novita accepts, and back: decode, validate, orient, fit, encode.

Plain Python with small pure functions; never imports streamlit. Every failure a person can cause comes out
as `ImageError`, whose text is one sentence that says what to do next.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, ImageMode, ImageOps

pillow_heif.register_heif_opener()

MAX_FILE_BYTES = 30 * 1024 * 1024  # hard cap on the uploaded file
FIT_EDGE = 2048  # box to fit into (2048 x 2048)
MAX_SOURCE_PIXELS = 64_000_000  # decompression-bomb guard, checked from the header before decoding pixels
# What decoding and fitting one photo may hold, judged from its header before decoding (after a JPEG's
# reduced-scale draft): 50 MP of colour, 25 MP with transparency, 22 MP of palette, 64 MP of 16-bit grey.
MAX_DECODE_BYTES = 192 * 1024 * 1024
MAX_PAGES = 100  # a TIFF's pages are found by walking all those before: counted up to here, never further
# Photos decoded at once in the whole process: a small shared box has 1-2 CPUs and 1-3 GB
DECODE_SLOTS = max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
PREVIEW_EDGE = 800  # slider previews: long edge at least this (or the photo's own, when smaller)
THUMB_EDGE = 256  # gallery thumbnails: the same rule
# A preview is made at the smallest scale that serves it: pixels (or a JPEG's reduced-scale decode) whose long
# edge is at most this much over the preview's edge are the preview as they are, and bigger ones are box-reduced
# by the integer factor that lands in that band, with no resampling at all. Only when no integer factor lands
# there (a 1500 px photo) are they resampled to the edge. A 2048 px photo's preview is 1024 px: a third of the
# work of resampling it to 800, and sharper on a high-density screen.
PREVIEW_SLACK = 1.375
OUTPUT_FORMATS = ("png", "webp", "jpeg")

# Previews up to 1.375x bigger than the edge carry up to 1.9x the pixels: at quality 80 a grainy 12 MP
# photo's 1008 px preview is 169 KB (800 px at 85 was 104 KB), and the slider shows it at 704 px or on a
# high-density screen, where the extra pixels show more than the extra quality would.
PREVIEW_QUALITY = 80
_DRAFT_GAP = 0.98  # a JPEG decoded at a DCT scale down to 98 % of the fitted size is sent at that size
# PNG level 3: about 4x faster than 6 on photos and no bigger for them; every PNG the app writes gains.
JPEG_QUALITY = 92  # a photo sent to Novita as JPEG, and a JPEG result converted here
_SAVE_OPTIONS = {"jpeg": {"quality": JPEG_QUALITY}, "webp": {"quality": 90}, "png": {"compress_level": 3}}
# Sniffed format -> the one Pillow plugin allowed to parse it, so Pillow's rarer parsers never see user bytes
_PLUGINS = {name: [name.upper()] for name in ("jpeg", "png", "webp", "gif", "bmp", "tiff", "avif", "heif")}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombWarning)
_HIGH_DEPTH_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_GREY_MODES = {"1", "L", "LA", "La"} | _HIGH_DEPTH_MODES
_RGB_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA"}
_ORIENTATION_TAG = 0x0112
_GPS_IFD_TAG = 0x8825
# Modes resized as they are, before any other work, when a photo is bigger than its box
_SHRINK_FIRST_MODES = {"L", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_NO_REDUCE_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}  # Image.reduce (and so reducing_gap) refuses these
_BAND_BYTES = 16 * 1024 * 1024  # high-depth pixels are brought to 8 bits this many bytes of rows at a time
_DECODES = threading.BoundedSemaphore(DECODE_SLOTS)


class ImageError(ValueError):
    """A photo we cannot use; str(err) is one sentence for a non-technical person that says what to do next."""


@dataclass(frozen=True)
class PreparedImage:
    data: bytes  # exactly what to send to Novita: JPEG or PNG bytes
    format: str  # "jpeg" or "png"
    size: tuple[int, int]  # (width, height) of data
    original_size: tuple[int, int]  # (width, height) after EXIF orientation, before fitting
    has_alpha: bool  # meaningful transparency (some alpha < 255)
    notices: tuple[str, ...]  # sentences for the person about what was changed and why
    reused_original: bool  # True when data is the uploaded bytes untouched
    preview: bytes = field(repr=False)  # the slider's JPEG of `data`, made from the same decode


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image  # loaded, upright, first frame, RGB / RGBA / L, alpha only when meaningful
    format: str  # sniffed from the bytes
    pil_format: str | None  # what Pillow opened: "MPO" for a JPEG that carries several pictures
    raw_mode: str  # mode as decoded, before normalising
    orientation: int  # EXIF orientation 1-8, already applied to `image`
    original_size: tuple[int, int]  # upright, before any reduced-scale decoding
    frames: int  # 1, or 2 for several
    gps: bool  # EXIF holds a GPS position
    plain_mode: bool  # decoded as RGB, RGBA or L with no tRNS to apply
    deep: bool  # more than 8 bits per channel (a 16-bit RGB PNG decodes as plain "RGB")


def _one_of_few_decodes(func: Callable) -> Callable:
    """Run `func` holding one of the process's DECODE_SLOTS: many sessions decoding big photos at once
    wait their turn rather than add up their memory."""

    @functools.wraps(func)
    def in_a_slot(*args, **kwargs):
        with _DECODES:
            return func(*args, **kwargs)

    return in_a_slot


def sniff_format(data: bytes) -> str | None:
    """Name the image format from its first bytes, not its filename: "jpeg", "png", "webp", "gif", "bmp",
    "tiff", "heif" or "avif"; None when the bytes are not one of those."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "tiff"
    if head[4:8] == b"ftyp":  # ISO-BMFF: the major brand decides, then the compatible ones
        box_end = min(int.from_bytes(data[:4], "big"), 256, len(data))
        compatible = {bytes(data[i : i + 4]) for i in range(16, box_end - 3, 4)}
        for brands in ({head[8:12]}, compatible):
            if brands & _AVIF_BRANDS:
                return "avif"
            if brands & _HEIF_BRANDS:
                return "heif"
    return None


@_one_of_few_decodes
def open_image(data: bytes, fit_edge: int | None = None) -> Image.Image:
    """Validate and decode photo bytes into an upright, loaded first frame in mode RGB, RGBA or L, with
    alpha kept only when some pixel is see-through; raises ImageError for anything we cannot use. With
    `fit_edge`, a JPEG may come out at a reduced scale that still covers that box, and another photo bigger
    than the box comes out fitted into it (for previews)."""
    return _decode(data, "This file", fit_edge=fit_edge).image


@_one_of_few_decodes
def prepare(data: bytes, filename: str | None = None) -> PreparedImage:
    """Turn an uploaded photo into the payload for Novita: the original bytes when they already qualify,
    else an upright image fitted inside FIT_EDGE x FIT_EDGE as PNG (transparency) or JPEG, with notices;
    and the slider's preview of it, made from the same decode."""
    opened = _open(data, label(filename))
    if _reusable_jpeg(opened):
        # Sent untouched, so its pixels are only needed for the preview: a reduced-scale decode reads (and
        # so checks) the whole file at a fraction of the cost of a full one.
        decoded = _load(opened, fit_edge=PREVIEW_EDGE)
        return PreparedImage(data, "jpeg", opened.size, opened.size, False, (), True, _preview(decoded.image))
    # A 12 MP phone JPEG decodes at half scale (2016 x 1512), already inside the box, and is sent at that
    # size: several times faster than decoding all 12 MP and shrinking them, and never resampled twice.
    decoded = _load(opened, fit_edge=FIT_EDGE, draft_gap=_DRAFT_GAP)
    image = decoded.image
    has_alpha = image.mode == "RGBA"
    if _reusable_png(decoded, opened):
        return PreparedImage(data, decoded.format, image.size, image.size, has_alpha, (), True, _preview(image))
    target = _fit_size(decoded.original_size, FIT_EDGE)
    if image.size != target and not _drafted_into_box(image.size, target):
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    kind = "png" if has_alpha else "jpeg"
    # A 2048 x 2048 RGBA PNG is at most ~17 MB, so the payload stays under the 30 MB and 4096 px limits.
    payload = encode(image, kind)
    notices = _notices(decoded, image.size)
    return PreparedImage(payload, kind, image.size, decoded.original_size, has_alpha, notices, False,
                         _preview(image))


def encode(image: Image.Image, image_type: str) -> bytes:
    """Encode an image as "png", "webp" or "jpeg" bytes (JPEG flattens transparency onto white); the
    caller's image is never changed."""
    image_type = _image_type(image_type)
    image = _standard_mode(image)
    icc = image.info.get("icc_profile")  # kept: a phone's wide-gamut profile keeps its colours right
    if image_type == "jpeg" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    buffer = io.BytesIO()
    image.save(buffer, image_type.upper(), icc_profile=icc, **_SAVE_OPTIONS[image_type])
    return buffer.getvalue()


@_one_of_few_decodes
def convert(data: bytes, image_type: str) -> bytes:
    """Re-encode image bytes as `image_type` (for when the API answers another type than asked); bytes
    already of that type come back unchanged."""
    image_type = _image_type(image_type)
    if sniff_format(data) == image_type:
        return data
    return encode(_decode(data, "The result image").image, image_type)


@_one_of_few_decodes
def preview(data: bytes, max_edge: int = PREVIEW_EDGE) -> bytes:
    """A light RGB JPEG for the before/after slider at the scale of a `max_edge` preview (see PREVIEW_SLACK),
    transparency shown on a checkerboard; big JPEGs are decoded at reduced scale, so this stays quick."""
    return _preview(_decode(data, "This image", fit_edge=max_edge).image, max_edge)


def thumbnail(data: bytes, max_edge: int = THUMB_EDGE) -> bytes:
    """A gallery thumbnail: the same as `preview`, with a THUMB_EDGE long edge by default."""
    return preview(data, max_edge)


def previews(image: Image.Image) -> tuple[bytes, bytes]:
    """(slider preview, gallery thumbnail) JPEGs of an already decoded image: one reduction from full size,
    the thumbnail made from the preview, so a result is never decoded again just for these."""
    shown = _shrunk(image, PREVIEW_EDGE)
    return _jpeg(shown), _preview(shown, THUMB_EDGE)


def _shrunk(image: Image.Image, max_edge: int) -> Image.Image:
    """`image` at the scale of a `max_edge` preview (see PREVIEW_SLACK), on a checkerboard where it is
    see-through (RGB or L)."""
    return on_checkerboard(_preview_scale(image, max_edge))


def preview_size(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The size of an `edge` preview of pixels of `size` (see PREVIEW_SLACK)."""
    return _preview_plan(size, edge)[0]


def _preview_plan(size: tuple[int, int], edge: int) -> tuple[tuple[int, int], int]:
    """(size, how): an `edge` preview of pixels of `size` is them as they are (how 1), box-reduced by the
    integer factor `how`, or resampled to the edge (how 0) when no factor lands in the band."""
    if max(size) <= edge * PREVIEW_SLACK:
        return size, 1
    factor = max(size) // edge
    reduced = -(-size[0] // factor), -(-size[1] // factor)  # what Image.reduce(factor) gives: sizes rounded up
    if max(reduced) <= edge * PREVIEW_SLACK:
        return reduced, factor
    return _fit_size(size, edge), 0


def _preview_scale(image: Image.Image, edge: int) -> Image.Image:
    """`image` brought to `preview_size`: as it is, box-reduced by an integer factor, or (no factor lands in
    the band) box-reduced and then resampled bicubic, which looks like Lanczos at preview size for a third of
    its time (40 dB PSNR against it on a 12 MP photo)."""
    target, how = _preview_plan(image.size, edge)
    if how == 1:
        return image
    reducible = image.mode not in _NO_REDUCE_MODES
    if how:
        return image.reduce(how) if reducible else image.resize(target, Image.Resampling.BOX)
    return image.resize(target, Image.Resampling.BICUBIC, reducing_gap=1.0 if reducible else None)


def _preview(image: Image.Image, max_edge: int = PREVIEW_EDGE) -> bytes:
    """The JPEG `preview` makes, from pixels already decoded."""
    return _jpeg(_shrunk(image, max_edge))


def _jpeg(shown: Image.Image) -> bytes:
    """A preview JPEG of an image already shrunk and flattened by `_shrunk`."""
    buffer = io.BytesIO()
    shown.save(buffer, "JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


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


@dataclass(frozen=True)
class _Opened:
    """A file opened and checked from its header; no pixels decoded yet."""

    image: Image.Image
    format: str  # sniffed from the bytes
    label: str  # how messages name the file
    size: tuple[int, int]  # as stored, before orientation
    frames: int  # 1, or 2 for several (see `_frames`)
    bit_depth: int  # per channel, from a PNG's IHDR (a 16-bit RGB PNG decodes as plain "RGB"); else 8


def _open(data: bytes, label: str) -> _Opened:
    """Check size and format, open with the one plugin for that format, bomb-guard from the header."""
    if not data:
        msg = f"{label} is empty (0 bytes). Choose the photo again, or export it again from its app."
        raise ImageError(msg)
    if len(data) > MAX_FILE_BYTES:
        msg = f"{label} is {megabytes(len(data))} MB; the limit is 30 MB. Export a smaller JPEG and try again."
        raise ImageError(msg)
    kind = sniff_format(data)
    if kind is None:
        msg = f"{label} isn't a photo this app can read. Choose a JPEG, PNG, WEBP, HEIC, AVIF, BMP, GIF or TIFF."
        raise ImageError(msg)
    with _readable(label):
        image = Image.open(io.BytesIO(data), formats=_PLUGINS[kind])
        width, height = image.size
        if width * height > MAX_SOURCE_PIXELS:
            msg = (
                f"{label} is {width} × {height} pixels, more than the {MAX_SOURCE_PIXELS // 1_000_000} "
                "megapixels this app can safely open. Resize it to 2048 × 2048 pixels or less, then retry."
            )
            raise ImageError(msg)
        frames = _frames(image, label)  # before load(): seeking moves the file away from the first frame
    bit_depth = data[24] if kind == "png" else 8  # byte 24: IHDR bit depth
    return _Opened(image, kind, label, (width, height), frames, bit_depth)


def _frames(image: Image.Image, label: str) -> int:
    """1 for one picture, 2 for several (only the first is used, so more are never counted); a TIFF of
    more than MAX_PAGES pages is refused. Never `n_frames`: it walks every page of a TIFF, which for
    tens of thousands of pages holds a CPU for many seconds."""
    if not getattr(image, "is_animated", False):
        return 1
    if image.format == "TIFF":
        try:
            image.seek(MAX_PAGES)  # walks only the pages before it
        except EOFError:
            pass
        else:
            msg = (f"{label} has more than {MAX_PAGES} pages; this app reads TIFFs of up to {MAX_PAGES}. "
                   "Save the page you want as its own file, then retry.")
            raise ImageError(msg)
        finally:
            image.seek(0)
    return 2


def _load(opened: _Opened, fit_edge: int | None = None, draft_gap: float = 1.0) -> _Decoded:
    """Draft, load, orient, normalise: the one place where bytes become pixels. A JPEG bigger than
    `fit_edge` is decoded at the smallest DCT scale that still covers `draft_gap` of the fitted size."""
    image, (width, height) = opened.image, opened.size
    with _readable(opened.label):
        fit = _fit_size(opened.size, fit_edge or max(opened.size))
        if fit != opened.size and image.format in ("JPEG", "MPO"):  # DCT-scaled decoding: several times faster
            image.draft(None, (int(fit[0] * draft_gap), int(fit[1] * draft_gap)))
        _check_decode_budget(image, opened.label)
        image.load()
        exif = image.getexif()
        orientation = _orientation(exif)
        if orientation != 1:
            ImageOps.exif_transpose(image, in_place=True)
        if fit_edge and image.format not in ("JPEG", "MPO"):  # a JPEG was drafted to about that size already
            image = _fitted_first(image, fit_edge)
        standard = _standard_mode(image)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    kind = opened.format
    deep = image.mode in _HIGH_DEPTH_MODES or opened.bit_depth > 8
    return _Decoded(
        _without_opaque_alpha(standard), kind, image.format, image.mode, orientation, upright, opened.frames,
        _GPS_IFD_TAG in exif, standard is image, deep,
    )


def _check_decode_budget(image: Image.Image, label: str) -> None:
    """Refuse a photo that would take more than MAX_DECODE_BYTES to decode and fit, judged from its header
    before a single pixel is decoded: width × height × (bytes per decoded pixel + those of the full-size
    copies fitting makes: a premultiplied one for RGBA, a converted one and its premultiplied one for modes
    that cannot be fitted as they are)."""
    width, height = image.size
    if image.mode in _SHRINK_FIRST_MODES and "transparency" not in image.info:
        copies = 4 if image.mode == "RGBA" else 0
    else:
        copies = 8
    needed = width * height * (_pixel_bytes(image.mode) + copies)
    if needed > MAX_DECODE_BYTES:
        msg = (f"{label} is {width} × {height} pixels: opening it would take {-(-needed // 2**20)} MB of memory, "
               f"more than the {MAX_DECODE_BYTES // 2**20} MB this app allows one photo. Resize it to "
               "2048 × 2048 pixels or less (or save it as a JPEG), then retry.")
        raise ImageError(msg)


def _pixel_bytes(mode: str) -> int:
    """Bytes one decoded pixel takes in Pillow: bands × bytes per band, with 8-bit colour held in 4 bytes."""
    try:
        described = ImageMode.getmode(mode)
    except KeyError:
        return 4
    band = int(described.typestr[-1])
    bands = len(described.bands)
    return 4 if band == 1 and bands > 1 else band * bands


def _fitted_first(image: Image.Image, fit_edge: int) -> Image.Image:
    """A photo bigger than fit_edge × fit_edge, fitted into it before anything else is done to it, so
    conversions work on the small copy; the full-size pixels are let go at once. Modes that resize
    badly as they are (palette, 1-bit, colour-key transparency, CMYK) are left for `_standard_mode`."""
    if image.mode not in _SHRINK_FIRST_MODES or "transparency" in image.info:
        return image
    if fit_edge <= PREVIEW_EDGE:  # pixels only for a preview: at the preview's scale
        fitted = _preview_scale(image, fit_edge)
    elif _fit_size(image.size, fit_edge) != image.size:
        fitted = image.resize(_fit_size(image.size, fit_edge), Image.Resampling.LANCZOS, reducing_gap=3.0)
    else:
        fitted = image
    if fitted is not image:
        image.close()
    return fitted


def _decode(data: bytes, label: str, fit_edge: int | None = None, draft_gap: float = 1.0) -> _Decoded:
    """Open and load in one go (see `_open` and `_load`)."""
    return _load(_open(data, label), fit_edge, draft_gap)


def _orientation(exif: Image.Exif) -> int:
    """The EXIF orientation 1-8; anything else counts as 1 (upright)."""
    orientation = exif.get(_ORIENTATION_TAG, 1)
    return orientation if orientation in range(1, 9) else 1


@contextmanager
def _readable(label: str) -> Iterator[None]:
    """Turn Pillow's many ways of saying "cannot read this" into one ImageError with a next step."""
    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        msg = f"{label} has too many pixels to open. Resize it to 2048 × 2048 pixels or less, then retry."
        raise ImageError(msg) from err
    except _PILLOW_ERRORS as err:
        msg = f"{label} can't be opened: it looks damaged or incomplete. Export or download it again, then retry."
        raise ImageError(msg) from err


def _standard_mode(image: Image.Image) -> Image.Image:
    """The image in mode RGB, RGBA or L (new unless it was already), minus an ICC profile that no longer fits."""
    mode = image.mode
    if mode == "RGBA" or (mode in ("RGB", "L") and not image.has_transparency_data):
        return image
    if mode in _HIGH_DEPTH_MODES:
        out = _to_8bit(image)
    elif image.has_transparency_data:
        out = image.convert("RGBA")
    else:
        out = image.convert("L" if mode == "1" else "RGB")
    if (mode in _GREY_MODES) != (out.mode == "L") or mode not in _GREY_MODES | _RGB_MODES:
        out.info.pop("icc_profile", None)
    return out


def _to_8bit(image: Image.Image) -> Image.Image:
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


def _without_opaque_alpha(image: Image.Image) -> Image.Image:
    """Drop an alpha channel in which every pixel is fully opaque: transparency only when it matters."""
    if image.mode != "RGBA" or image.getextrema()[3][0] < 255:  # no copy of the alpha channel
        return image
    return image.convert("RGB")


def _reusable_png(decoded: _Decoded, opened: _Opened) -> bool:
    """Can a PNG go to Novita untouched: one upright plain 8-bit frame in the box, no GPS? (A JPEG is
    judged from its header alone, before any decoding: `_reusable_jpeg`.)"""
    if decoded.format != "png" or decoded.frames != 1 or decoded.orientation != 1 or decoded.gps:
        return False
    return max(decoded.original_size) <= FIT_EDGE and decoded.plain_mode and opened.bit_depth == 8


def _reusable_jpeg(opened: _Opened) -> bool:
    """Can a JPEG go to Novita untouched: one upright plain RGB or grey frame in the box, no GPS? Decided
    from its header alone (its EXIF sits before the pixels)."""
    image = opened.image
    if opened.format != "jpeg" or image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return False
    exif = image.getexif()
    return (opened.frames == 1 and max(opened.size) <= FIT_EDGE and _orientation(exif) == 1
            and _GPS_IFD_TAG not in exif)


def _drafted_into_box(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """A reduced-scale decode that landed inside the box, within `_DRAFT_GAP` of the fitted size: sent as
    it is rather than resampled up by a few pixels."""
    return max(size) <= FIT_EDGE and size[0] >= target[0] * _DRAFT_GAP and size[1] >= target[1] * _DRAFT_GAP


def _notices(decoded: _Decoded, target: tuple[int, int]) -> tuple[str, ...]:
    """Sentences that tell the person what was changed in their photo, and why."""
    notices = []
    if target != decoded.original_size:
        (w, h), (tw, th) = decoded.original_size, target
        limit = f"{FIT_EDGE} × {FIT_EDGE}"
        notices.append(
            f"Your photo was scaled down from {w} × {h} to {tw} × {th} pixels "
            f"to fit the background service's {limit} limit."
        )
    if decoded.orientation != 1:
        notices.append("Your photo was turned upright using the orientation your camera recorded.")
    if decoded.frames > 1 and decoded.format in ("gif", "webp", "png", "avif"):
        notices.append("Your file is an animation, so only its first frame was used.")
    elif decoded.frames > 1 and decoded.format == "tiff":
        notices.append("Your file has several pages, so only the first page was used.")
    if decoded.raw_mode == "CMYK":
        notices.append("Your photo's print colours (CMYK) were converted to screen colours (RGB).")
    elif decoded.deep:
        notices.append("Your photo's high bit depth was reduced to the standard 8 bits per channel.")
    return tuple(notices)


def _fit_size(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The size that fits inside edge x edge keeping the aspect ratio; never larger, never below 1 px."""
    width, height = size
    longest = max(width, height)
    if longest <= edge:
        return width, height
    return max(1, round(width * edge / longest)), max(1, round(height * edge / longest))


def _image_type(image_type: str) -> str:
    """Normalise an output type name ("JPG" -> "jpeg"); a name outside OUTPUT_FORMATS is a caller's bug."""
    name = image_type.strip().lower().replace("jpg", "jpeg")
    if name not in OUTPUT_FORMATS:
        msg = f"image_type must be one of {OUTPUT_FORMATS}, not {image_type!r}"
        raise ValueError(msg)
    return name


def label(filename: str | None) -> str:
    """How messages name the file: its base name quoted, cut short and stripped of control characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:80]
    return f"“{name}”" if name else "This file"


def megabytes(size: int) -> str:
    """Size in MB for a message; one decimal near the limit so "30 MB; the limit is 30 MB" never shows."""
    size_mb = size / (1024 * 1024)
    return f"{size_mb:.0f}" if size_mb >= 31 else f"{size_mb:.1f}"
