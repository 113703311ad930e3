"""Awkward and hostile photos, through the page as a person uploads them and through `images.prepare`.

Each one is either handled (converted, turned upright, scaled, first frame) with the notice the change
calls for, shown on the page, and then goes end to end through the loopback stand-in; or refused with a
sentence that says what to do, leaving an earlier good photo in place. None crashes the session.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import struct
import time
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pillow_heif
import pytest
import streamlit as st
from PIL import Image, ImageOps
from streamlit.testing.v1 import AppTest

from components.messages import note_sentences, refusal_sentence
from components.text import escape_markdown
from services import images
from tests.conftest import ROOT, photo_bytes

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 30
GOOD_NAME = "good.jpg"
PROMPT = "on a marble kitchen counter, soft morning light"
HANG_GUARD = 30.0  # seconds: a guard against hangs on the bomb and the long strip (generous: speed is in bench/)
SENTENCE = re.compile(r"^\S.{20,}[.!?]$", re.S)
LEAKS = re.compile(r"Traceback|Exception|\w+Error\b|object at 0x|File \"|errno")


# ---------------------------------------------------------------------------------------------------------
# Generated inputs


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, rows: Callable[[], bytes] | bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = rows() if callable(rows) else rows
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


@functools.cache
def bomb_png(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of width x height black pixels: a few hundred KB on disk, gigabytes
    decoded. (Image.new("1", (40000, 40000)) would itself allocate 1.6 GB, so the rows are streamed.)"""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits

    def idat() -> bytes:
        z = zlib.compressobj(9)
        return b"".join(z.compress(row) for _ in range(height)) + z.flush()

    return _png(width, height, 1, 0, idat)


def grey16_png(width: int = 400, height: int = 300) -> bytes:
    """A 16-bit greyscale PNG: black on the left to white on the right."""
    ramp = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.uint16)
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    data = _save(image, "PNG")
    assert data[24] == 16  # IHDR bit depth
    return data


def rgb16_png(width: int = 400, height: int = 300) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): red ramps left to right, green top to bottom."""
    x = np.linspace(0, 65535, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 65535, height)[:, None].repeat(width, 1)
    pixels = np.stack([x, y, np.full_like(x, 0x8000)], axis=-1).astype(">u2")
    raw = b"".join(b"\0" + pixels[row].tobytes() for row in range(height))
    return _png(width, height, 16, 2, zlib.compress(raw))


def cmyk_jpeg() -> bytes:
    return _save(Image.new("CMYK", (400, 300), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red in print inks


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (200, 200), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * (256 * 3 - 6))
    image.paste(1, (50, 50, 150, 150))
    return _save(image, "PNG", transparency=0)


FRAMES = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (120, 80), colour) for colour in FRAMES]
    options = {"lossless": True} if fmt == "WEBP" else {}
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)


def heic() -> bytes:
    pillow_heif.register_heif_opener()
    return _save(Image.new("RGB", (320, 240), (200, 30, 30)), "HEIF", quality=90)


def truncated_jpeg() -> bytes:
    data = _save(Image.effect_noise((640, 480), 60).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


QUADRANTS = {(0, 0): (230, 20, 20), (1, 0): (20, 200, 20), (0, 1): (20, 20, 230), (1, 1): (240, 220, 20)}


def quadrants(size: tuple[int, int] = (400, 300)) -> Image.Image:
    """Four coloured quadrants, so any turn or mirror shows."""
    width, height = size
    image = Image.new("RGB", size)
    for (qx, qy), colour in QUADRANTS.items():
        image.paste(colour, (qx * width // 2, qy * height // 2, (qx + 1) * width // 2, (qy + 1) * height // 2))
    return image


def oriented_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(quadrants(), "JPEG", quality=95, exif=exif.tobytes())


def over_cap() -> bytes:
    """31 MB that starts like a JPEG: the size alone must refuse it, before anything is decoded."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (31 * 1024 * 1024)


# ---------------------------------------------------------------------------------------------------------
# What arrives at the stand-in


def close(pixel, colour, tolerance=40) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, colour))


def centre(image: Image.Image):
    return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def check_grey_ramp(sent: Image.Image, _data: bytes) -> None:
    grey = np.asarray(sent.convert("L"), dtype=float)
    left, right = grey[:, :10].mean(), grey[:, -10:].mean()
    assert left < 30 and right > 225, f"16-bit ramp arrived as {left:.0f} … {right:.0f} (all white/black?)"
    assert 100 < grey.mean() < 155


def check_rgb_ramp(sent: Image.Image, _data: bytes) -> None:
    rgb = np.asarray(sent.convert("RGB"), dtype=float)
    assert rgb[:, :10, 0].mean() < 30 and rgb[:, -10:, 0].mean() > 225, "red ramp lost"
    assert rgb[:10, :, 1].mean() < 30 and rgb[-10:, :, 1].mean() > 225, "green ramp lost"
    assert 100 < rgb[:, :, 2].mean() < 155, "blue (0x8000) lost"


def check_colour(colour) -> Callable[[Image.Image, bytes], None]:
    def check(sent: Image.Image, _data: bytes) -> None:
        assert close(centre(sent), colour), f"centre {centre(sent)}, expected about {colour}"
    return check


def check_palette_alpha(sent: Image.Image, _data: bytes) -> None:
    assert sent.format == "PNG" and sent.mode == "RGBA", (sent.format, sent.mode)
    assert sent.getpixel((0, 0))[3] == 0, "the transparent surround was lost"
    assert sent.getpixel((100, 100)) == (200, 30, 30, 255)


def check_upright(sent: Image.Image, data: bytes) -> None:
    """Compare quadrant centres with what a viewer that honours EXIF shows."""
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    got = sent.convert("RGB")
    assert got.size == expected.size
    width, height = expected.size
    for qx in (0, 1):
        for qy in (0, 1):
            point = (width * (2 * qx + 1) // 4, height * (2 * qy + 1) // 4)
            assert close(got.getpixel(point), expected.getpixel(point)), (point, got.getpixel(point))


# ---------------------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    mime: str
    make: Callable[[], bytes]
    refused: tuple[str, ...] = ()  # lower-case fragments of the refusal sentence; empty = handled
    notices: tuple[str, ...] = ()  # lower-case fragments the notices must hold (handled only)
    sent_size: tuple[int, int] | None = None  # what the stand-in must receive
    check: Callable[[Image.Image, bytes], None] | None = None
    timed: bool = False


ORIENTATION_CASES = [
    Case(f"bad-{12 + n:02d}-exif-orientation-{n}", f"phone-{n}.jpg", "image/jpeg",
         functools.partial(oriented_jpeg, n), sent_size=(300, 400) if n >= 5 else (400, 300), check=check_upright)
    for n in range(1, 9)
]

CASES = [
    Case("bad-01-empty", "empty.jpg", "image/jpeg", lambda: b"", refused=("empty", "0 bytes", "again")),
    Case("bad-02-text-named-png", "notes.png", "image/png", lambda: b"Shopping list:\n- milk\n- eggs\n",
         refused=("isn't a photo", "choose a jpeg")),
    Case("bad-03-truncated-jpeg", "cut.jpg", "image/jpeg", truncated_jpeg,
         refused=("damaged or incomplete", "again")),
    Case("bad-04-bomb-40000x40000", "bomb.png", "image/png", functools.partial(bomb_png, 40000, 40000),
         refused=("pixels", "resize it"), timed=True),
    Case("bad-05-bomb-9000x9000", "big-sky.png", "image/png", functools.partial(bomb_png, 9000, 9000),
         refused=("9000 × 9000", "resize it"), timed=True),
    Case("bad-06-16bit-grey-png", "scan16.png", "image/png", grey16_png, notices=("bit depth",),
         sent_size=(400, 300), check=check_grey_ramp),
    Case("bad-07-16bit-rgb-png", "render16.png", "image/png", rgb16_png, notices=("bit depth",),
         sent_size=(400, 300), check=check_rgb_ramp),
    Case("bad-08-cmyk-jpeg", "print.jpg", "image/jpeg", cmyk_jpeg, notices=("cmyk",), sent_size=(400, 300),
         check=check_colour((255, 0, 0))),
    Case("bad-09-palette-png-transparency", "logo.png", "image/png", palette_png_with_transparency,
         sent_size=(200, 200), check=check_palette_alpha),
    Case("bad-10-animated-gif", "wave.gif", "image/gif", functools.partial(animated, "GIF"),
         notices=("first frame",), sent_size=(120, 80), check=check_colour(FRAMES[0])),
    Case("bad-11-animated-webp", "wave.webp", "image/webp", functools.partial(animated, "WEBP"),
         notices=("first frame",), sent_size=(120, 80), check=check_colour(FRAMES[0])),
    Case("bad-12-1x1", "dot.png", "image/png", lambda: _save(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
         sent_size=(1, 1), check=check_colour((10, 20, 30))),
    *ORIENTATION_CASES,  # bad-13 … bad-20 (orientation 1 is the untouched control)
    Case("bad-21-strip-10000x100", "panorama.jpg", "image/jpeg",
         lambda: _save(Image.new("RGB", (10000, 100), (20, 180, 40)), "JPEG"),
         notices=("scaled down", "10000 × 100", "2048 × 20"), sent_size=(2048, 20),
         check=check_colour((20, 180, 40)), timed=True),
    Case("bad-22-heic", "IMG_0001.HEIC", "image/heic", heic, sent_size=(320, 240),
         check=check_colour((200, 30, 30))),
    Case("bad-23-png-named-jpg", "really-a-png.jpg", "image/jpeg", lambda: photo_bytes((300, 200), "PNG"),
         sent_size=(300, 200), check=check_colour((200, 60, 40))),
    Case("bad-24-over-30mb", "huge.jpg", "image/jpeg", over_cap, refused=("31 mb", "limit is 30 mb")),
]
CASES.sort(key=lambda c: c.id)


@pytest.fixture
def app(novita_env):
    st.cache_resource.clear()  # a fresh shared-key limiter: another file's 429 must not hold these runs back
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    yield at
    st.cache_resource.clear()


def upload(at: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, mime))
    return at.run()


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def sent_image(request) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(request.json["image_file"], validate=True)))
    image.load()
    return image


# ---------------------------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_through_prepare(case: Case):
    data = case.make()
    started = time.perf_counter()
    if case.refused:
        with pytest.raises(images.ImageError) as caught:
            images.prepare(data, case.filename)
        elapsed = time.perf_counter() - started
        message = refusal_sentence(caught.value)
        assert SENTENCE.match(message) and not LEAKS.search(message), message
        for fragment in case.refused:
            assert fragment in message.lower(), f"{fragment!r} not in {message!r}"
    else:
        prepared = images.prepare(data, case.filename)
        elapsed = time.perf_counter() - started
        assert max(prepared.size) <= images.FIT_EDGE
        assert prepared.size == case.sent_size
        assert prepared.format in ("jpeg", "png")
        said = note_sentences(prepared.notices)
        joined = " ".join(said).lower()
        for fragment in case.notices:
            assert fragment in joined, f"{fragment!r} not in notices {said}"
        for notice in said:
            assert SENTENCE.match(notice) and not LEAKS.search(notice), notice
    if case.timed:
        assert elapsed < HANG_GUARD, f"{elapsed:.1f} s"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_through_the_page(app, novita_env, case: Case):
    stub = novita_env
    upload(app, GOOD_NAME, photo_bytes(), "image/jpeg")
    assert app.session_state["photo"].name == GOOD_NAME and not app.error

    data = case.make()
    started = time.perf_counter()
    upload(app, case.filename, data, case.mime)
    elapsed = time.perf_counter() - started
    assert not app.exception, app.exception
    if case.timed:
        assert elapsed < HANG_GUARD, f"{elapsed:.1f} s"

    if case.refused:
        errors = [e.value for e in app.error]
        assert len(errors) == 1, errors
        message = errors[0]
        assert SENTENCE.match(message) and not LEAKS.search(message), message
        assert case.filename in message  # says which file
        for fragment in case.refused:
            assert fragment in message.lower(), f"{fragment!r} not in {message!r}"
        photo = app.session_state["photo"]
        assert photo is not None and photo.name == GOOD_NAME, "the earlier good photo was dropped"
        in_use = [m.value for m in app.markdown if "Photo in use" in m.value]
        assert len(in_use) == 1 and escape_markdown(GOOD_NAME) in in_use[0]  # still shown as the photo in use
        # The good photo still works end to end.
        app.text_area(key="prompt").input(PROMPT)
        app.button(key="replace.run").click().run()
        assert not app.exception and len(app.session_state["history"]) == 1
        assert sent_image(stub.requests[-1]).size == (640, 480)
        return

    assert not app.error, [e.value for e in app.error]
    photo = app.session_state["photo"]
    assert photo is not None and photo.name == case.filename
    shown = captions(app)
    for notice in note_sentences(photo.prepared.notices):  # every change the preparation made is said on the page
        assert notice in shown, f"notice not shown: {notice!r}"
    joined = " ".join(shown).lower()
    for fragment in case.notices:
        assert fragment in joined, f"{fragment!r} not among captions {shown}"

    before = len(stub.requests)
    app.text_area(key="prompt").input(PROMPT)
    app.radio(key="format").set_value("PNG")
    app.button(key="replace.run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert len(stub.requests) == before + 1
    sent = sent_image(stub.requests[-1])
    assert sent.width <= 2048 and sent.height <= 2048
    assert sent.size == case.sent_size, f"sent {sent.size}, expected {case.sent_size}"
    if case.check:
        case.check(sent, data)
    history = app.session_state["history"]
    assert len(history) == 1
    item = next(iter(history))
    assert item.prompt == PROMPT and item.source_name == case.filename
    assert images.sniff_format(item.result) == "png"
    assert any(b.proto.label.startswith("Download") for b in app.get("download_button"))


def test_matrix_ids_count_without_gaps():
    assert [int(c.id.split("-")[1]) for c in CASES] == list(range(1, len(CASES) + 1))


def test_upload_cap_is_30_mb_in_the_config_and_in_prepare():
    """The browser's uploader refuses files over server.maxUploadSize before they are sent; prepare()
    says the same limit in its own sentence for anything that gets past it (camera, samples, tests)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 30
    assert images.MAX_FILE_BYTES == 30 * 1024 * 1024
    with pytest.raises(images.ImageError) as caught:
        images.prepare(b"\xff\xd8\xff" + b"\0" * images.MAX_FILE_BYTES, "edge.jpg")  # one byte over
    assert "limit is 30 MB" in refusal_sentence(caught.value)


def test_refusal_shows_a_markdown_filename_literally(app):
    """st.error renders Markdown: a refused file's name must show as typed, not as a link or bold text."""
    name = "[Click here](https://example.com) **now**.png"
    upload(app, name, b"not an image", "image/png")
    assert not app.exception
    message = app.error[0].value
    unescaped = re.findall(r"(?<!\\)[\[\]*]", message)
    assert not unescaped, f"Markdown in the file name is live on the page: {message!r}"
