"""services.images and services.previews: every image is generated here; assertions are on mode, size, format
and pixels, and on the sentences components.messages makes of refusals and notices."""

from __future__ import annotations

import functools
import io
import random
import struct
import threading
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageFile, JpegImagePlugin, TiffImagePlugin

from components.messages import note_sentences, refusal_sentence
from services import images, modes, previews
from services.images import ImageError, PreparedImage
from tests import hostile_files

pillow_heif.register_heif_opener()

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ---------------------------------------------------------------- helpers


def save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def load(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close(actual, expected, tolerance=40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def gradient(size: tuple[int, int]) -> Image.Image:
    """A cheap RGB image with content (smooth ramps), so JPEG stays small and resizing has work to do."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.dstack([x, y, 255 - x]).astype(np.uint8))


def marked(size=(96, 64)) -> Image.Image:
    """White, with a red block in the top-left corner: shows where "up" and "left" went."""
    image = Image.new("RGB", size, WHITE)
    image.paste(RED, (0, 0, 24, 24))
    return image


@functools.cache
def phone_jpeg() -> bytes:
    return save(gradient((4032, 3024)), "JPEG", quality=90)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot write: 16-bit RGB, or a header that lies about size."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def check_payload(prepared: PreparedImage) -> Image.Image:
    """The invariants every payload keeps; returns the decoded payload for further checks."""
    assert images.sniff_format(prepared.data) == prepared.format
    assert prepared.format in ("jpeg", "png")
    assert len(prepared.data) <= images.MAX_FILE_BYTES
    decoded = load(prepared.data)
    assert decoded.size == prepared.size
    assert max(decoded.size) <= images.FIT_EDGE
    if prepared.has_alpha:
        assert prepared.format == "png"
        assert decoded.mode == "RGBA"
        assert decoded.getchannel("A").getextrema()[0] < 255
    if not prepared.reused_original:
        assert decoded.mode in ("RGB", "RGBA", "L")
    shown = load(prepared.preview)  # the slider's preview of exactly this payload
    width, height = prepared.size
    assert shown.format == "JPEG" and shown.size == previews.plan(prepared.size, previews.PREVIEW_EDGE)[0]
    longest = max(shown.size)
    assert longest == max(width, height) or previews.PREVIEW_EDGE <= longest <= previews.PREVIEW_EDGE * previews.PREVIEW_SLACK
    scale = longest / max(width, height)
    assert abs(shown.width - width * scale) <= 1 and abs(shown.height - height * scale) <= 1
    return decoded


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", "jpeg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
        ("AVIF", "avif"),
        ("HEIF", "heif"),
    ],
)
def test_sniff_format_reads_content(fmt, expected):
    assert images.sniff_format(save(gradient((16, 16)), fmt)) == expected


NON_IMAGES = [b"", b"hello, this is text", b"%PDF-1.7\n", b"\0\0\0\x18ftypisom\0\0\0\0isommp42"]


@pytest.mark.parametrize("data", NON_IMAGES)
def test_sniff_format_refuses_non_images(data):
    assert images.sniff_format(data) is None


# ---------------------------------------------------------------- modes


def _mode_case(name: str) -> tuple[bytes, str, bool, bool]:
    """(file bytes, expected payload mode, expected has_alpha, expected reuse) for one source mode."""
    base = gradient((64, 48))
    if name == "RGB":
        return save(base, "PNG"), "RGB", False, True
    if name == "RGBA":
        rgba = base.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
        return save(rgba, "PNG"), "RGBA", True, True
    if name == "RGBA opaque":
        return save(base.convert("RGBA"), "PNG"), "RGBA", False, True  # reused as is: still a plain PNG
    if name == "L":
        return save(base.convert("L"), "PNG"), "L", False, True
    if name == "LA":
        la = Image.merge("LA", (base.convert("L"), Image.new("L", (64, 48), 128)))
        return save(la, "PNG"), "RGBA", True, False
    if name == "P":
        return save(base.convert("P"), "PNG"), "RGB", False, False
    if name == "P transparent":
        palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        return save(palette, "PNG", transparency=palette.getpixel((0, 0))), "RGBA", True, False
    if name == "CMYK JPEG":
        return save(base.convert("CMYK"), "JPEG"), "RGB", False, False
    if name == "I;16 PNG":
        ramp = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. ~64500
        return save(Image.fromarray(ramp), "PNG"), "L", False, False
    if name == "1-bit PNG":
        return save(base.convert("1"), "PNG"), "L", False, False
    if name == "F TIFF":
        floats = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
        return save(Image.fromarray(floats), "TIFF"), "L", False, False
    raise AssertionError(name)


MODE_CASES = [
    "RGB", "RGBA", "RGBA opaque", "L", "LA", "P", "P transparent", "CMYK JPEG", "I;16 PNG", "1-bit PNG", "F TIFF",
]


@pytest.mark.parametrize("name", MODE_CASES)
def test_prepare_normalises_modes(name):
    data, mode, has_alpha, reused = _mode_case(name)
    prepared = images.prepare(data, "photo")
    decoded = check_payload(prepared)
    assert decoded.mode == mode
    assert prepared.has_alpha is has_alpha
    assert prepared.reused_original is reused
    assert (prepared.data is data) is reused
    assert prepared.size == prepared.original_size == (64, 48)
    assert prepared.format == ("png" if reused and images.sniff_format(data) == "png" or has_alpha else "jpeg")


@pytest.mark.parametrize("name", MODE_CASES)
def test_open_image_gives_loaded_plain_modes(name):
    data, mode, has_alpha, _ = _mode_case(name)
    image = images.open_image(data)
    assert image.mode == ("RGBA" if has_alpha else "RGB" if mode == "RGBA" else mode)
    assert image.size == (64, 48)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    data, *_ = _mode_case("I;16 PNG")
    prepared = images.prepare(data)
    low, high = load(prepared.data).getextrema()
    assert low < 8 and high > 240  # clipping instead of scaling would come out (0, 255) with most at 255
    assert np.asarray(load(prepared.data)).mean() == pytest.approx(126, abs=6)
    assert any("8 bits" in notice for notice in note_sentences(prepared.notices))


def test_sixteen_bit_rgb_png_is_not_reused():
    pixels = np.zeros((8, 8, 3), dtype=">u2")
    pixels[..., 0] = 0x8000  # half red
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    data = raw_png(8, 8, 16, 2, rows)
    prepared = images.prepare(data)
    assert not prepared.reused_original
    assert prepared.format == "jpeg"
    assert close(load(prepared.data).getpixel((4, 4)), (128, 0, 0), 6)
    assert any("8 bits" in notice for notice in note_sentences(prepared.notices))


def test_cmyk_becomes_rgb_with_notice():
    data = save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")
    prepared = images.prepare(data)
    assert close(load(prepared.data).getpixel((16, 16)), RED)
    assert any("CMYK" in notice for notice in note_sentences(prepared.notices))


def test_palette_transparency_survives():
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(0, (0, 0, 16, 32))
    prepared = images.prepare(save(image, "PNG", transparency=0))
    decoded = load(prepared.data)
    assert decoded.getpixel((4, 4))[3] == 0 and decoded.getpixel((24, 4)) == (*RED, 255)


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("size", "fitted", "reused"),
    [
        ((1, 1), (1, 1), True),
        ((10000, 100), (2048, 20), False),
        ((4032, 3024), (2016, 1512), False),  # decoded at half scale, already inside the box: sent as is
        ((2048, 2048), (2048, 2048), True),
        ((3000, 1000), (2048, 683), False),
        ((1000, 3000), (683, 2048), False),
    ],
)
def test_prepare_fits_inside_the_box(size, fitted, reused):
    data = phone_jpeg() if size == (4032, 3024) else save(gradient(size), "JPEG", quality=90)
    prepared = images.prepare(data, "big.jpg")
    check_payload(prepared)
    assert prepared.size == fitted
    assert prepared.original_size == size
    assert prepared.reused_original is reused
    assert prepared.format == "jpeg"
    scaled = [notice for notice in note_sentences(prepared.notices) if "scaled down" in notice]
    if reused:
        assert prepared.data is data and prepared.notices == ()
    else:
        (w, h), (fw, fh) = size, fitted
        expected = (
            f"Your photo was scaled down from {w} × {h} to {fw} × {fh} pixels "
            "to fit the background service's 2048 × 2048 limit."
        )
        assert scaled == [expected]


def test_absurdly_thin_strip_keeps_one_pixel():
    prepared = images.prepare(save(Image.new("RGB", (20000, 1), BLUE), "PNG"))
    assert prepared.size == (2048, 1)
    assert close(load(prepared.data).getpixel((1000, 0)), BLUE)


def test_small_images_are_never_upscaled():
    prepared = images.prepare(save(gradient((300, 200)), "WEBP"))
    assert prepared.size == (300, 200)


def test_scaled_payload_keeps_content():
    image = Image.new("RGB", (4000, 2000), WHITE)
    image.paste(RED, (0, 0, 2000, 2000))
    prepared = images.prepare(save(image, "PNG"))
    decoded = load(prepared.data)
    assert prepared.size == (2048, 1024)
    assert close(decoded.getpixel((500, 500)), RED) and close(decoded.getpixel((1500, 500)), WHITE)


def test_big_jpeg_is_drafted(monkeypatch):
    requests = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        requests.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    preview = load(images.preview(phone_jpeg()))
    assert requests == [(800, 600)]
    assert preview.size == (1008, 756)  # the quarter-scale decode serves as it is: no resampling


def test_photo_sent_untouched_is_decoded_once_at_preview_scale(monkeypatch):
    """A JPEG that fits is sent as uploaded, so prepare decodes it only once, at the DCT scale the slider's
    preview needs; that decode still reads the whole file."""
    data = save(gradient((2048, 1536)), "JPEG", quality=90)
    drafts, loads = [], []
    original_draft, original_load = JpegImagePlugin.JpegImageFile.draft, ImageFile.ImageFile.load

    def draft(self, mode, size):
        drafts.append(size)
        return original_draft(self, mode, size)

    def load_spy(self):
        if self.tile:
            loads.append(self.size)
        return original_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load_spy)
    prepared = images.prepare(data, "fits.jpg")
    assert prepared.data is data and prepared.reused_original
    assert drafts == [(800, 600)] and loads == [(1024, 768)]
    assert load(prepared.preview).size == (1024, 768)  # the half-scale decode is the preview


def test_cut_off_photo_is_refused_even_when_it_would_be_sent_untouched():
    data = save(Image.effect_noise((2048, 1536), 64).convert("RGB"), "JPEG")
    with pytest.raises(ImageError) as caught:
        images.prepare(data[: len(data) * 3 // 4], "cut.jpg")
    assert "damaged or incomplete" in refusal_sentence(caught.value)


@pytest.mark.parametrize(("size", "shown_size", "thumb_size"), [
    ((2048, 1536), (1024, 768), (256, 192)),  # an integer reduction lands in the band: nothing resampled
    ((1500, 1000), (800, 533), (267, 178)),  # none does: resampled; the thumbnail is a third of that
])
def test_previews_match_the_fair_resize(size, shown_size, thumb_size):
    """Quick previews (box reduction, then bicubic only where needed) look like Lanczos from full size."""
    image = load(phone_jpeg()).resize(size)
    fair = image.resize(shown_size, Image.Resampling.LANCZOS)
    shown, thumb = (load(data) for data in previews.previews(image))
    assert shown.size == shown_size and thumb.size == thumb_size
    difference = np.abs(np.asarray(shown, np.int16) - np.asarray(fair, np.int16))
    assert difference.mean() < 2.0


@pytest.mark.parametrize(("size", "edge", "expected"), [
    ((800, 600), 800, (800, 600)),
    ((1100, 825), 800, (1100, 825)),  # within the band: as it is
    ((1101, 826), 800, (800, 600)),  # over it, and no integer factor lands in it: resampled to the edge
    ((2048, 1536), 800, (1024, 768)),
    ((4032, 3024), 800, (807, 605)),  # a factor of 5, sizes rounded up as Image.reduce does
    ((1024, 768), 256, (256, 192)),
    ((1008, 756), 256, (336, 252)),
    ((300, 200), 800, (300, 200)),  # never upscaled
])
def test_preview_size_is_the_smallest_scale_that_serves(size, edge, expected):
    assert previews.plan(size, edge)[0] == expected
    shown = previews.scaled(Image.new("RGB", size), edge)
    assert shown.size == expected


def test_a_16_bit_grey_image_gets_a_preview():
    """Pillow cannot box-reduce 16-bit grey; its preview is made all the same (it used to be called damaged)."""
    rows = (np.arange(2000, dtype=np.uint32)[None, :] * 32 + np.arange(1200, dtype=np.uint32)[:, None])
    data = save(Image.fromarray((rows % 65536).astype(np.uint16)), "PNG")
    assert images.open_image(data, fit_edge=previews.PREVIEW_EDGE).size == (1000, 600)
    assert load(images.preview(data)).size == (1000, 600)
    assert load(images.preview(save(Image.fromarray(np.zeros((1000, 1500), np.uint16)), "PNG"))).size == (800, 533)


def test_before_and_after_previews_of_the_same_size_match():
    """The slider's two sides come from different decodes (a JPEG's reduced-scale one, a reply's full one)
    and still have the same size."""
    data = save(gradient((2048, 1536)), "JPEG", quality=90)
    before = load(images.prepare(data, "fits.jpg").preview)
    after = load(previews.previews(load(save(gradient((2048, 1536)), "PNG")))[0])
    assert before.size == after.size == (1024, 768)


# ---------------------------------------------------------------- EXIF orientation

# exif_transpose's operation per tag, inverted: what a camera stored for an upright scene
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_once(orientation):
    upright = marked((96, 64))
    stored = upright.transpose(STORED[orientation]) if STORED[orientation] is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = save(stored, "JPEG", exif=exif, quality=95)
    assert load(data).size == ((64, 96) if orientation >= 5 else (96, 64))

    prepared = images.prepare(data)
    decoded = check_payload(prepared)
    assert prepared.size == prepared.original_size == (96, 64)
    assert close(decoded.getpixel((6, 6)), RED)
    for corner in [(90, 6), (6, 58), (90, 58)]:
        assert close(decoded.getpixel(corner), WHITE)
    assert prepared.reused_original is (orientation == 1)
    assert any("upright" in notice for notice in note_sentences(prepared.notices)) is (orientation != 1)
    assert images.open_image(data).size == (96, 64)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF"])
def test_exif_orientation_in_other_containers(fmt):
    upright = marked((96, 64))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = save(upright.transpose(Image.Transpose.ROTATE_90), fmt, exif=exif.tobytes())
    image = images.open_image(data)
    assert image.size == (96, 64)
    assert close(image.getpixel((6, 6)), RED) and close(image.getpixel((90, 58)), WHITE)


def test_large_rotated_jpeg_fits_after_rotation():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = save(gradient((2400, 1800)), "JPEG", exif=exif)
    prepared = images.prepare(data)
    assert prepared.original_size == (1800, 2400)
    assert prepared.size == (1536, 2048)


# ---------------------------------------------------------------- other formats


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF", "BMP", "TIFF", "WEBP", "GIF"])
def test_other_formats_become_jpeg(fmt):
    data = save(marked((96, 64)), fmt)
    prepared = images.prepare(data, f"photo.{fmt.lower()}")
    decoded = check_payload(prepared)
    assert prepared.format == "jpeg" and not prepared.reused_original
    assert prepared.size == (96, 64)
    assert close(decoded.getpixel((6, 6)), RED) and close(decoded.getpixel((90, 58)), WHITE)


def test_heif_with_alpha_becomes_png():
    image = marked((64, 64)).convert("RGBA")
    image.paste((0, 0, 0, 0), (32, 32, 64, 64))
    prepared = images.prepare(save(image, "HEIF"))
    assert prepared.format == "png" and prepared.has_alpha
    assert load(prepared.data).getpixel((48, 48))[3] < 20


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_uses_first_frame(fmt):
    frames = [Image.new("RGB", (48, 32), colour) for colour in (RED, GREEN, BLUE)]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = images.prepare(data)
    check_payload(prepared)
    assert close(load(prepared.data).getpixel((24, 16)), RED)
    assert not prepared.reused_original
    assert any("first frame" in notice for notice in note_sentences(prepared.notices))


def test_multipage_tiff_uses_first_page():
    pages = [Image.new("RGB", (48, 32), colour) for colour in (GREEN, BLUE)]
    prepared = images.prepare(save(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert close(load(prepared.data).getpixel((24, 16)), GREEN)
    assert any("first page" in notice for notice in note_sentences(prepared.notices))


def test_multi_picture_jpeg_sends_only_the_main_picture():
    second = Image.new("RGB", (48, 32))
    data = save(Image.new("RGB", (48, 32), GREEN), "MPO", save_all=True, append_images=[second])
    assert load(data).format == "MPO"
    prepared = images.prepare(data)
    assert not prepared.reused_original and prepared.notices == ()
    assert len(prepared.data) < len(data) and close(load(prepared.data).getpixel((24, 16)), GREEN)


def test_icc_profile_is_kept_for_rgb_and_dropped_for_cmyk():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = images.prepare(save(gradient((3000, 100)), "JPEG", icc_profile=srgb))
    assert load(rgb.data).info.get("icc_profile") == srgb
    cmyk = images.prepare(save(Image.new("CMYK", (16, 16)), "JPEG", icc_profile=srgb))
    assert "icc_profile" not in load(cmyk.data).info


def test_gps_position_is_never_sent():
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 1.0)})
    data = save(marked(), "JPEG", exif=exif)
    prepared = images.prepare(data)
    assert not prepared.reused_original
    assert 0x8825 not in load(prepared.data).getexif()


# ---------------------------------------------------------------- refusals


def refusal(data: bytes, filename: str | None = "photo.png") -> str:
    with pytest.raises(ImageError) as caught:
        images.prepare(data, filename)
    message = refusal_sentence(caught.value)
    assert message.endswith(".") and "\n" not in message
    return message


def test_empty_file_is_refused():
    expected = "“photo.png” is empty (0 bytes). Choose the photo again, or export it again from its app."
    assert refusal(b"") == expected


def test_text_named_png_is_refused():
    message = refusal(b"this is not an image at all\n" * 10, "notes.png")
    assert message.startswith("“notes.png” isn't a photo this app can read.")


def test_random_bytes_are_refused():
    assert "isn't a photo" in refusal(random.Random(7).randbytes(4096))


def test_truncated_jpeg_is_refused():
    data = save(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")
    assert "damaged or incomplete" in refusal(data[: len(data) // 2], "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageError):
        images.preview(data[: len(data) // 2])


def test_broken_png_body_is_refused():
    data = save(gradient((64, 64)), "PNG")
    assert "damaged" in refusal(data[:40] + b"\0" * 200)


def test_pillow_errors_never_escape():
    with pytest.raises(ImageError) as caught:
        images.open_image(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert isinstance(caught.value.__cause__, (OSError, SyntaxError, ValueError))


def test_over_the_size_cap_is_refused():
    data = save(gradient((32, 32)), "JPEG")
    padded = data + b"\0" * (41 * 1024 * 1024 - len(data))
    expected = "“huge.jpg” is 41 MB; the limit is 30 MB. Export a smaller JPEG and try again."
    assert refusal(padded, "huge.jpg") == expected
    just_over = data + b"\0" * (images.MAX_FILE_BYTES + 1 - len(data))
    assert "is 30.0 MB; the limit is 30 MB" in refusal(just_over)


def test_exactly_at_the_size_cap_is_accepted():
    data = save(gradient((32, 32)), "JPEG")
    padded = data + b"\0" * (images.MAX_FILE_BYTES - len(data))  # bytes after the JPEG end marker are ignored
    prepared = images.prepare(padded)
    assert prepared.reused_original and len(prepared.data) == images.MAX_FILE_BYTES


def test_unsupported_format_is_refused():
    assert "isn't a photo this app can read" in refusal(b"8BPS\0\x01" + b"\0" * 60, "art.psd")


def test_filename_in_messages_is_sanitised():
    message = refusal(b"", "C:\\Users\\me\\holiday\n.jpg")
    assert message.startswith("“holiday.jpg” is empty")
    assert refusal(b"", None).startswith("This file is empty")


@pytest.fixture
def pillow_guard_off():
    """Another package switches Pillow's own bomb guard off for the whole process; ours must still hold."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    yield
    Image.MAX_IMAGE_PIXELS = saved


def bomb(width: int, height: int) -> bytes:
    """A tiny 1-bit PNG whose header declares width x height; its body is never reached."""
    return raw_png(width, height, 1, 0, b"\0" * 64)


@pytest.mark.timeout(5)
@pytest.mark.usefixtures("pillow_guard_off")
def test_decompression_bomb_is_refused_from_the_header():
    data = bomb(40000, 40000)
    assert len(data) < 200
    message = refusal(data, "bomb.png")
    assert message.startswith("“bomb.png” is 40000 × 40000 pixels, more than the 64 megapixels")
    with pytest.raises(ImageError):
        images.preview(data)
    with pytest.raises(ImageError):
        images.open_image(data)


@pytest.mark.usefixtures("pillow_guard_off")
def test_just_over_the_pixel_cap_is_refused():
    assert "8001 × 8000 pixels" in refusal(bomb(8001, 8000))


def test_pillows_own_bomb_error_is_translated():
    assert Image.MAX_IMAGE_PIXELS is not None
    assert "pixels" in refusal(bomb(40000, 40000))


# ---------------------------------------------------------------- encode / convert


def transparent_square() -> Image.Image:
    image = Image.new("RGBA", (32, 32), (*BLUE, 255))
    image.paste((0, 0, 0, 0), (0, 0, 16, 32))
    return image


@pytest.mark.parametrize("image_type", images.OUTPUT_FORMATS)
def test_encode_writes_the_asked_type_without_touching_the_image(image_type):
    image = transparent_square()
    before = (image.mode, image.size, image.tobytes())
    data = images.encode(image, image_type)
    assert images.sniff_format(data) == image_type
    assert (image.mode, image.size, image.tobytes()) == before
    decoded = load(data).convert("RGBA")
    assert close(decoded.getpixel((24, 16)), (*BLUE, 255))
    if image_type == "jpeg":
        assert close(decoded.getpixel((4, 16)), (*WHITE, 255))  # flattened onto white
    else:
        assert decoded.getpixel((4, 16))[3] < 10


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "1", "I;16", "F"])
def test_encode_accepts_odd_modes(mode):
    data = images.encode(Image.new(mode, (8, 8)), "jpeg")
    assert load(data).mode in ("RGB", "L")


def test_encode_refuses_unknown_types():
    with pytest.raises(ValueError, match="image_type"):
        images.encode(Image.new("RGB", (4, 4)), "gif")
    assert images.sniff_format(images.encode(Image.new("RGB", (4, 4)), "JPG")) == "jpeg"


# ---------------------------------------------------------------- previews


@pytest.mark.parametrize(
    ("edge", "expected"), [(previews.PREVIEW_EDGE, (1008, 756)), (previews.THUMB_EDGE, (256, 192))],
)
def test_previews_are_small_rgb_jpegs(edge, expected):
    data = images.preview(phone_jpeg(), edge)  # 4032 x 3024: decoded at the DCT scale that covers the edge
    decoded = load(data)
    assert images.sniff_format(data) == "jpeg"
    assert decoded.mode == "RGB" and decoded.size == expected
    assert edge <= max(decoded.size) <= edge * previews.PREVIEW_SLACK


def test_preview_never_upscales_and_accepts_grey():
    decoded = load(images.preview(save(Image.new("L", (100, 40), 90), "PNG")))
    assert decoded.size == (100, 40) and decoded.mode == "RGB"


def test_preview_shows_transparency_on_a_checkerboard():
    decoded = load(images.preview(save(transparent_square(), "PNG")))
    assert decoded.mode == "RGB"
    left = decoded.getpixel((4, 4))
    assert min(left) > 200 and close(decoded.getpixel((24, 16)), BLUE)


def test_on_checkerboard_composites_over_light_cells():
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((*RED, 255), (48, 48, 64, 64))
    board = previews.on_checkerboard(image, cell=16)
    assert board.mode == "RGB" and board.size == (64, 64)
    assert board.getpixel((0, 0)) == board.getpixel((16, 16)) != board.getpixel((16, 0))
    assert all(min(board.getpixel(xy)) >= 200 for xy in [(0, 0), (16, 0)])
    assert board.getpixel((56, 56)) == RED
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (0, 0, 0, 0)


def test_on_checkerboard_of_opaque_image_is_plain_rgb():
    board = previews.on_checkerboard(Image.new("L", (8, 8), 50))
    assert board.mode == "RGB" and board.getpixel((3, 3)) == (50, 50, 50)



# ---------------------------------------------------------------- bounded memory and CPU


@pytest.mark.parametrize(("mode", "fmt", "fits", "over"), [
    ("L", "PNG", (1024, 1024), (1025, 1024)),  # 1 byte a pixel
    ("1", "PNG", (341, 341), (342, 341)),  # 1, then converted (4) and premultiplied (4) at full size
    ("P", "PNG", (341, 341), (342, 341)),
    ("RGB", "PNG", (512, 512), (513, 512)),  # 3 bands held in 4 bytes
    ("RGBA", "PNG", (362, 362), (363, 362)),  # 4, and the premultiplied copy fitting makes
    ("I;16", "PNG", (724, 724), (725, 724)),  # 2
    ("F", "TIFF", (512, 512), (513, 512)),  # 4
])
def test_the_decode_budget_counts_bytes_per_pixel_from_the_header(monkeypatch, mode, fmt, fits, over):
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 2**20)
    assert images.prepare(save(Image.new(mode, fits), fmt), "photo").size == fits
    (width, height) = over
    message = refusal(save(Image.new(mode, over), fmt))
    assert message == (f"“photo.png” is {width} × {height} pixels: opening it would take 2 MB of memory, more "
                       "than the 1 MB this app allows one photo. Resize it to 2048 × 2048 pixels or less (or save "
                       "it as a JPEG), then retry.")


def test_the_decode_budget_applies_to_a_jpeg_after_its_reduced_scale_draft(monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 16 * 2**20)  # 4032 x 3024 RGB is 47 MB at full scale
    prepared = images.prepare(phone_jpeg(), "IMG_0001.jpg")
    assert prepared.size == (2016, 1512)  # decoded at half scale: 12 MB


@pytest.mark.parametrize(("name", "make", "refused_mb"), [
    ("grey16.png", lambda: hostile_files.big_png("I;16"), None),  # 122 MB decoded: prepared, fitted first
    ("rgba.png", lambda: hostile_files.big_png("RGBA", fill=(9, 9, 9, 255)), 489),
    ("floats.tif", hostile_files.float_tiff, 245),
])
def test_small_files_that_decode_big_are_refused_or_prepared_within_the_budget(name, make, refused_mb):
    data = make()
    assert len(data) < 400_000
    if refused_mb is None:
        prepared = images.prepare(data, name)
        assert prepared.size == (2048, 2048) and prepared.original_size == (7999, 7999)
        assert load(prepared.data).getextrema() == (3, 3)  # 1000 / 256, scaled not clipped
        assert any("8 bits" in notice for notice in note_sentences(prepared.notices))
    else:
        message = refusal(data, name)
        assert message.startswith(f"“{name}” is ") and f"would take {refused_mb} MB of memory" in message
        assert "the 192 MB this app allows one photo" in message


@pytest.mark.parametrize("mode", ["I;16", "I", "I small", "F"])
def test_high_depth_grey_comes_to_8_bits_a_band_at_a_time_as_a_whole(monkeypatch, mode):
    monkeypatch.setattr(modes, "_BAND_BYTES", 4000)  # 300 px wide: 3 rows a band, 67 bands
    ramp = np.linspace(0, 1, 300 * 200).reshape(200, 300)
    values = {"I;16": ramp * 65535, "I": ramp * 1_000_000 - 5000, "I small": ramp * 255, "F": ramp * 3.5 - 1}[mode]
    array = values.astype({"I;16": np.uint16, "F": np.float32}.get(mode, np.int32))
    image = Image.fromarray(array)
    data = save(image, "PNG" if mode == "I;16" else "TIFF")
    if mode == "F":
        low, high = float(array.min()), float(array.max())
        expected = (array.astype(np.float64) - low) * (255 / (high - low))
    elif mode == "I small":
        expected = array
    else:
        expected = array.astype(np.int64) // 256
    got = np.asarray(images.open_image(data))
    assert got.dtype == np.uint8 and got.shape == (200, 300)
    assert np.abs(got.astype(np.int64) - np.clip(expected, 0, 255).astype(np.int64)).max() <= 1


@pytest.mark.parametrize(("fmt", "orientation"), [("PNG", 6), ("TIFF", 8), ("PNG", 1)])
def test_a_big_photo_is_fitted_before_it_is_converted_and_stays_upright(fmt, orientation):
    values = np.full((1000, 3000), 20000, np.uint16)
    values[:300, :300] = 60000  # a bright block at the stored top-left
    image = Image.fromarray(values)
    exif = Image.Exif()
    exif[0x0112] = orientation
    prepared = images.prepare(save(image, fmt, exif=exif))
    upright = (1000, 3000) if orientation != 1 else (3000, 1000)
    assert prepared.original_size == upright and max(prepared.size) == images.FIT_EDGE
    shown = load(prepared.data)
    corner = {6: (shown.width - 20, 20), 8: (20, shown.height - 20), 1: (20, 20)}[orientation]
    assert shown.getpixel(corner) > 200 and shown.getpixel((shown.width // 2, shown.height // 2)) < 100


@pytest.mark.parametrize("pages", [2, images.MAX_PAGES])
def test_a_tiff_of_up_to_the_page_limit_uses_its_first_page(pages):
    prepared = images.prepare(hostile_files.many_pages_tiff(pages), "scan.tif")
    assert prepared.size == (1, 1)
    assert "Your file has several pages, so only the first page was used." in note_sentences(prepared.notices)


@pytest.mark.parametrize("pages", [images.MAX_PAGES + 1, 32_000])
def test_a_tiff_of_more_pages_is_refused_without_counting_them_all(monkeypatch, pages):
    walked = []  # each page Pillow steps onto; n_frames would step onto every one of them
    step = TiffImagePlugin.TiffImageFile._seek

    def counted_step(self, frame):
        walked.append(frame)
        return step(self, frame)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_seek", counted_step)
    data = hostile_files.many_pages_tiff(pages)
    assert refusal(data, "scan.tif") == ("“scan.tif” has more than 100 pages; this app reads TIFFs of up to 100. "
                                          "Save the page you want as its own file, then retry.")
    assert max(walked) == images.MAX_PAGES


def test_decodes_at_once_are_bounded_across_the_process(monkeypatch):
    """As many threads as there are slots meet inside a decode (a barrier of that many would time out
    otherwise), and never one more."""
    inside, most = [0], [0]
    lock = threading.Lock()
    meet = threading.Barrier(images.DECODE_SLOTS, timeout=20)
    real_load = images._load

    def counted_load(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            meet.wait()
            return real_load(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(images, "_load", counted_load)
    data = save(gradient((300, 200)), "PNG")
    calls = [images.prepare, images.open_image, images.preview, lambda d: images.preview(d, previews.THUMB_EDGE)]
    errors = []

    def work(call):
        try:
            call(data)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(calls[i % 4],)) for i in range(4 * images.DECODE_SLOTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and most[0] == images.DECODE_SLOTS
