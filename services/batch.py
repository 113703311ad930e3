"""A batch's photos from what was uploaded: photos, and ZIPs of photos opened within a budget."""

from __future__ import annotations

import io
import zipfile
import zlib

MAX_PHOTOS = 50  # per batch: enough for a product shoot, not enough to empty a shared key by accident
MAX_ZIP_BYTES = 300 * 1024 * 1024  # uncompressed total read out of one uploaded ZIP


def photos_from_uploads(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Expand uploads (photos and ZIPs of photos) into (name, bytes) pairs; also return sentences about
    what was skipped. ZIPs are read with a cap on total size and count, skipping folders and hidden files."""
    photos: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    for name, data in files:
        if not name.lower().endswith(".zip"):
            photos.append((name, data))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                total = 0
                for info in archive.infolist():
                    base = info.filename.rsplit("/", 1)[-1]
                    if info.is_dir() or not base or base.startswith(".") or "__MACOSX" in info.filename:
                        continue
                    total += info.file_size
                    if total > MAX_ZIP_BYTES or len(photos) >= MAX_PHOTOS:
                        skipped.append(f"{name}: stopped reading at {len(photos)} photos; the ZIP holds more "
                                       "than one batch can take.")
                        break
                    photos.append((base, archive.read(info)))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError):
            skipped.append(f"{name}: this ZIP could not be opened (damaged or password-protected). "
                           "Upload the photos themselves or a plain ZIP.")
    if len(photos) > MAX_PHOTOS:
        skipped.append(f"Only the first {MAX_PHOTOS} photos are taken in one batch; run the rest in another.")
        photos = photos[:MAX_PHOTOS]
    return photos, skipped
