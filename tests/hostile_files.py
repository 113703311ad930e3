"""Small files that cost a lot to open: made on the fly for the tests, never kept in the repository."""

from __future__ import annotations

import io
import struct
import zipfile

from PIL import Image

MB = 1024 * 1024


def save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def big_png(mode: str, size: tuple[int, int] = (7999, 7999), fill=1000) -> bytes:
    """A flat PNG: a 16-bit grey 7999 × 7999 one is about 140 KB and 122 MB decoded."""
    return save(Image.new(mode, size, fill), "PNG", compress_level=9)


def float_tiff(size: tuple[int, int] = (8000, 8000)) -> bytes:
    """A deflated 32-bit float TIFF: about 380 KB, 244 MB decoded, far more through float64 arithmetic."""
    return save(Image.new("F", size, 0.5), "TIFF", compression="tiff_adobe_deflate")


def many_pages_tiff(pages: int) -> bytes:
    """A little-endian TIFF of `pages` 1 × 1 grey pages sharing one pixel strip; 32,000 pages is ~3.5 MB.
    Written by hand: Pillow's own writer takes minutes for that many."""
    entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
               (278, 3, 1), (279, 4, 1)]  # width, height, bits, no compression, black is 0, strip at 8, ...
    ifd_size = 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", 9) + b"\x80")  # header, first IFD at 9, the strip at 8
    for i in range(pages):
        following = 9 + (i + 1) * ifd_size if i < pages - 1 else 0
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, 1) + packed
        out += struct.pack("<I", following)
    return bytes(out)


def zip_bomb(member_mb: int = 290, name: str = "photo.png") -> bytes:
    """A ZIP of one member of `member_mb` MB of zeros: 290 MB deflates to about 290 KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(name, "w", force_zip64=member_mb >= 4096) as member:
            chunk = bytes(MB)
            for _ in range(member_mb):
                member.write(chunk)
    return buffer.getvalue()
