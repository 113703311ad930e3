"""From uploaded photo bytes to a payload Novita accepts, and back: decode, validate, orient, fit, encode.

Plain Python with small pure functions; never imports streamlit. Every failure a person can cause comes out
as `ImageError`, whose kind and facts (the file's name, its size, the limit) `components.messages` words; what
was changed in a photo comes out as notes. Previews and thumbnails are `services.previews`.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pillow_heif
from PIL import Image, ImageOps

from services import previews
from services.errors import Note, Refusal, note
from services.formats import sniff_format
from services.modes import HIGH_DEPTH_MODES, pixel_bytes, standard_mode, without_opaque_alpha
from services.previews import PREVIEW_EDGE, fit_size

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
OUTPUT_FORMATS = ("png", "webp", "jpeg")
_DRAFT_GAP = 0.98  # a JPEG decoded at a DCT scale down to 98 % of the fitted size is sent at that size
# PNG level 3: about 4x faster than 6 on photos and no bigger for them; every PNG the app writes gains.
JPEG_QUALITY = 92  # a photo sent to Novita as JPEG, and a JPEG result converted here
_SAVE_OPTIONS = {"jpeg": {"quality": JPEG_QUALITY}, "webp": {"quality": 90}, "png": {"compress_level": 3}}
# Sniffed format -> the one Pillow plugin allowed to parse it, so Pillow's rarer parsers never see user bytes
_PLUGINS = {name: [name.upper()] for name in ("jpeg", "png", "webp", "gif", "bmp", "tiff", "avif", "heif")}
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombWarning)
_ORIENTATION_TAG = 0x0112
_GPS_IFD_TAG = 0x8825
# Modes resized as they are, before any other work, when a photo is bigger than its box
_SHRINK_FIRST_MODES = {"L", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_DECODES = threading.BoundedSemaphore(DECODE_SLOTS)


class ImageError(Refusal, ValueError):
    """A photo we cannot use. `kind`: empty, too_big, not_a_photo, too_many_pixels, too_many_pages,
    too_much_memory, bomb or damaged; `facts` hold `file` (the name it was uploaded under, or None), `what` ("file" or "image")
    and the sizes and limit that apply."""

    kind = "damaged"


@dataclass(frozen=True)
class PreparedImage:
    data: bytes  # exactly what to send to Novita: JPEG or PNG bytes
    format: str  # "jpeg" or "png"
    size: tuple[int, int]  # (width, height) of data
    original_size: tuple[int, int]  # (width, height) after EXIF orientation, before fitting
    has_alpha: bool  # meaningful transparency (some alpha < 255)
    notices: tuple[Note, ...]  # what was changed and why, for the person
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


@_one_of_few_decodes
def open_image(data: bytes, fit_edge: int | None = None) -> Image.Image:
    """Validate and decode photo bytes into an upright, loaded first frame in mode RGB, RGBA or L, with
    alpha kept only when some pixel is see-through; raises ImageError for anything we cannot use. With
    `fit_edge`, a JPEG may come out at a reduced scale that still covers that box, and another photo bigger
    than the box comes out fitted into it (for previews)."""
    return _decode(data, None, fit_edge=fit_edge).image


@_one_of_few_decodes
def prepare(data: bytes, filename: str | None = None) -> PreparedImage:
    """Turn an uploaded photo into the payload for Novita: the original bytes when they already qualify,
    else an upright image fitted inside FIT_EDGE x FIT_EDGE as PNG (transparency) or JPEG, with notices;
    and the slider's preview of it, made from the same decode."""
    opened = _open(data, filename)
    if _reusable_jpeg(opened):
        # Sent untouched, so its pixels are only needed for the preview: a reduced-scale decode reads (and
        # so checks) the whole file at a fraction of the cost of a full one.
        decoded = _load(opened, fit_edge=PREVIEW_EDGE)
        return PreparedImage(data, "jpeg", opened.size, opened.size, False, (), True, previews.jpeg(decoded.image))
    # A 12 MP phone JPEG decodes at half scale (2016 x 1512), already inside the box, and is sent at that
    # size: several times faster than decoding all 12 MP and shrinking them, and never resampled twice.
    decoded = _load(opened, fit_edge=FIT_EDGE, draft_gap=_DRAFT_GAP)
    image = decoded.image
    has_alpha = image.mode == "RGBA"
    if _reusable_png(decoded, opened):
        return PreparedImage(data, decoded.format, image.size, image.size, has_alpha, (), True, previews.jpeg(image))
    target = fit_size(decoded.original_size, FIT_EDGE)
    if image.size != target and not _drafted_into_box(image.size, target):
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    kind = "png" if has_alpha else "jpeg"
    # A 2048 x 2048 RGBA PNG is at most ~17 MB, so the payload stays under the 30 MB and 4096 px limits.
    payload = encode(image, kind)
    notices = _notices(decoded, image.size)
    return PreparedImage(payload, kind, image.size, decoded.original_size, has_alpha, notices, False,
                         previews.jpeg(image))


def encode(image: Image.Image, image_type: str) -> bytes:
    """Encode an image as "png", "webp" or "jpeg" bytes (JPEG flattens transparency onto white); the
    caller's image is never changed."""
    image_type = _image_type(image_type)
    image = standard_mode(image)
    icc = image.info.get("icc_profile")  # kept: a phone's wide-gamut profile keeps its colours right
    if image_type == "jpeg" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    buffer = io.BytesIO()
    image.save(buffer, image_type.upper(), icc_profile=icc, **_SAVE_OPTIONS[image_type])
    return buffer.getvalue()


@_one_of_few_decodes
def preview(data: bytes, max_edge: int = PREVIEW_EDGE) -> bytes:
    """A light RGB JPEG of image bytes at the scale of a `max_edge` preview (see `services.previews`); big
    JPEGs are decoded at reduced scale, so this stays quick."""
    return previews.jpeg(_decode(data, None, "image", fit_edge=max_edge).image, max_edge)


@dataclass(frozen=True)
class _Opened:
    """A file opened and checked from its header; no pixels decoded yet."""

    image: Image.Image
    format: str  # sniffed from the bytes
    facts: dict  # how a refusal names the file: `file` (its upload name, or None) and `what` ("file" or "image")
    size: tuple[int, int]  # as stored, before orientation
    frames: int  # 1, or 2 for several (see `_frames`)
    bit_depth: int  # per channel, from a PNG's IHDR (a 16-bit RGB PNG decodes as plain "RGB"); else 8


def _open(data: bytes, file: str | None, what: str = "file") -> _Opened:
    """Check size and format, open with the one plugin for that format, bomb-guard from the header."""
    named = {"file": file, "what": what}
    if not data:
        raise ImageError("empty", **named)
    if len(data) > MAX_FILE_BYTES:
        raise ImageError("too_big", **named, size=len(data), limit=MAX_FILE_BYTES)
    kind = sniff_format(data)
    if kind is None:
        raise ImageError("not_a_photo", **named)
    with _readable(named):
        image = Image.open(io.BytesIO(data), formats=_PLUGINS[kind])
        width, height = image.size
        if width * height > MAX_SOURCE_PIXELS:
            raise ImageError("too_many_pixels", **named, width=width, height=height, limit=MAX_SOURCE_PIXELS)
        frames = _frames(image, named)  # before load(): seeking moves the file away from the first frame
    bit_depth = data[24] if kind == "png" else 8  # byte 24: IHDR bit depth
    return _Opened(image, kind, named, (width, height), frames, bit_depth)


def _frames(image: Image.Image, named: dict) -> int:
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
            raise ImageError("too_many_pages", **named, limit=MAX_PAGES)
        finally:
            image.seek(0)
    return 2


def _load(opened: _Opened, fit_edge: int | None = None, draft_gap: float = 1.0) -> _Decoded:
    """Draft, load, orient, normalise: the one place where bytes become pixels. A JPEG bigger than
    `fit_edge` is decoded at the smallest DCT scale that still covers `draft_gap` of the fitted size."""
    image, (width, height) = opened.image, opened.size
    with _readable(opened.facts):
        fit = fit_size(opened.size, fit_edge or max(opened.size))
        if fit != opened.size and image.format in ("JPEG", "MPO"):  # DCT-scaled decoding: several times faster
            image.draft(None, (int(fit[0] * draft_gap), int(fit[1] * draft_gap)))
        _check_decode_budget(image, opened.facts)
        image.load()
        exif = image.getexif()
        orientation = _orientation(exif)
        if orientation != 1:
            ImageOps.exif_transpose(image, in_place=True)
        if fit_edge and image.format not in ("JPEG", "MPO"):  # a JPEG was drafted to about that size already
            image = _fitted_first(image, fit_edge)
        standard = standard_mode(image)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    kind = opened.format
    deep = image.mode in HIGH_DEPTH_MODES or opened.bit_depth > 8
    return _Decoded(
        without_opaque_alpha(standard), kind, image.format, image.mode, orientation, upright, opened.frames,
        _GPS_IFD_TAG in exif, standard is image, deep,
    )


def _check_decode_budget(image: Image.Image, named: dict) -> None:
    """Refuse a photo that would take more than MAX_DECODE_BYTES to decode and fit, judged from its header
    before a single pixel is decoded: width × height × (bytes per decoded pixel + those of the full-size
    copies fitting makes: a premultiplied one for RGBA, a converted one and its premultiplied one for modes
    that cannot be fitted as they are)."""
    width, height = image.size
    if image.mode in _SHRINK_FIRST_MODES and "transparency" not in image.info:
        copies = 4 if image.mode == "RGBA" else 0
    else:
        copies = 8
    needed = width * height * (pixel_bytes(image.mode) + copies)
    if needed > MAX_DECODE_BYTES:
        raise ImageError("too_much_memory", **named, width=width, height=height, needed=needed,
                         limit=MAX_DECODE_BYTES)


def _fitted_first(image: Image.Image, fit_edge: int) -> Image.Image:
    """A photo bigger than fit_edge × fit_edge, fitted into it before anything else is done to it, so
    conversions work on the small copy; the full-size pixels are let go at once. Modes that resize
    badly as they are (palette, 1-bit, colour-key transparency, CMYK) are left for `modes.standard_mode`."""
    if image.mode not in _SHRINK_FIRST_MODES or "transparency" in image.info:
        return image
    if fit_edge <= PREVIEW_EDGE:  # pixels only for a preview: at the preview's scale
        fitted = previews.scaled(image, fit_edge)
    elif fit_size(image.size, fit_edge) != image.size:
        fitted = image.resize(fit_size(image.size, fit_edge), Image.Resampling.LANCZOS, reducing_gap=3.0)
    else:
        fitted = image
    if fitted is not image:
        image.close()
    return fitted


def _decode(data: bytes, file: str | None, what: str = "file", fit_edge: int | None = None,
            draft_gap: float = 1.0) -> _Decoded:
    """Open and load in one go (see `_open` and `_load`)."""
    return _load(_open(data, file, what), fit_edge, draft_gap)


def _orientation(exif: Image.Exif) -> int:
    """The EXIF orientation 1-8; anything else counts as 1 (upright)."""
    orientation = exif.get(_ORIENTATION_TAG, 1)
    return orientation if orientation in range(1, 9) else 1


@contextmanager
def _readable(named: dict) -> Iterator[None]:
    """Turn Pillow's many ways of saying "cannot read this" into one ImageError with a next step."""
    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError("bomb", **named) from err
    except _PILLOW_ERRORS as err:
        raise ImageError("damaged", **named) from err


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


def _notices(decoded: _Decoded, target: tuple[int, int]) -> tuple[Note, ...]:
    """What was changed in the person's photo, and the facts of why."""
    notices = []
    if target != decoded.original_size:
        (w, h), (tw, th) = decoded.original_size, target
        notices.append(note("scaled_down", width=w, height=h, to_width=tw, to_height=th, limit=FIT_EDGE))
    if decoded.orientation != 1:
        notices.append(note("turned_upright"))
    if decoded.frames > 1 and decoded.format in ("gif", "webp", "png", "avif"):
        notices.append(note("first_frame"))
    elif decoded.frames > 1 and decoded.format == "tiff":
        notices.append(note("first_page"))
    if decoded.raw_mode == "CMYK":
        notices.append(note("cmyk"))
    elif decoded.deep:
        notices.append(note("high_bit_depth"))
    return tuple(notices)


def _image_type(image_type: str) -> str:
    """Normalise an output type name ("JPG" -> "jpeg"); a name outside OUTPUT_FORMATS is a caller's bug."""
    name = image_type.strip().lower().replace("jpg", "jpeg")
    if name not in OUTPUT_FORMATS:
        msg = f"image_type must be one of {OUTPUT_FORMATS}, not {image_type!r}"
        raise ValueError(msg)
    return name
