"""Which image format bytes hold, read from their first bytes, never from a file's name.

Plain Python; never imports streamlit.
"""

from __future__ import annotations

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}


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
