"""What a batch takes from its uploads: photos, and the photos inside ZIPs, within one budget per batch.

The budget (photos and bytes) is counted across every upload and every ZIP together. A ZIP member too big
for one photo is refused from its header, without reading it, and reading is bounded even when a header
lies. Each refusal is an `UploadRefusal` that names the file and the limit (`components.messages` words it);
the other photos carry on. Plain Python; never imports streamlit.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.errors import Refusal
from services.images import MAX_FILE_BYTES

MAX_PHOTOS = 50  # per batch: enough for a product shoot, not enough to empty a shared key by accident
MAX_BATCH_BYTES = 300 * 1024 * 1024  # every photo of one batch together, uploads and ZIP members alike
MAX_ZIP_FILES = 1000  # entries in one ZIP; its whole directory is parsed up front, so it is bounded first
MAX_NOTES = 6  # refusals listed one by one; the rest are counted in one more
_CHUNK = 1024 * 1024  # ZIP members are inflated this much at a time, so a lying header costs one chunk more
_ZIP_ENTRY = b"PK\x01\x02"  # every central-directory entry starts with it: a count bounds the entries
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)


class UploadRefusal(Refusal):
    """What an upload left out of a batch, never raised. `kind`: upload_too_big (`file`, `zip` when it is a ZIP's
    member, `size`, `limit`), zip_too_many_files (`zip`, `limit`, `photos`), zip_unreadable (`zip`),
    member_unreadable (`file`, `zip`), more_left_out (`count`: refusals not listed one by one) or batch_full
    (`file`, `zip` or None, `more`: how many after it, `photos` or `bytes`: the batch's limit that ran out)."""


def photos_from_uploads(files: Iterable[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[UploadRefusal]]:
    """Expand uploads (photos and ZIPs of photos) into the (name, bytes) pairs one batch takes, skipping
    folders and hidden files in ZIPs; also return what was left out, each naming the file and the limit
    (the first MAX_NOTES one by one, the rest counted; those past the budget in one)."""
    budget = _Budget()
    for name, data in files:
        if budget.full is not None:
            budget.left_out(1 if not _is_zip(name) else _count_photos(data))
        elif _is_zip(name):
            _expand(name, data, budget)
        elif len(data) > MAX_FILE_BYTES:
            budget.note(UploadRefusal("upload_too_big", file=name, zip=None, size=len(data), limit=MAX_FILE_BYTES))
        else:
            budget.take(name, data, (name, None))
    return budget.photos, budget.refusals()


@dataclass
class _Budget:
    """What one batch has taken so far, and what it left out."""

    photos: list[tuple[str, bytes]] = field(default_factory=list)
    size: int = 0  # bytes taken
    notes: list[UploadRefusal] = field(default_factory=list)
    full: dict | None = None  # which limit ran out ({"photos": n} or {"bytes": n}), once the budget did
    first_left_out: tuple[str, str | None] | None = None  # (file, the ZIP it is in or None)
    more_left_out: int = 0

    def room(self) -> int:
        """Bytes the next photo may have: the per-photo limit, or what is left of the batch's, if less."""
        return min(MAX_FILE_BYTES, MAX_BATCH_BYTES - self.size)

    def admits(self, size: int, shown: tuple[str, str | None]) -> bool:
        """Whether one more photo of `size` bytes fits; if not, the batch is full from this photo on."""
        if len(self.photos) >= MAX_PHOTOS:
            self.full = {"photos": MAX_PHOTOS}
        elif self.size + size > MAX_BATCH_BYTES:
            self.full = {"bytes": MAX_BATCH_BYTES}
        else:
            return True
        self.first_left_out = shown
        return False

    def take(self, name: str, data: bytes, shown: tuple[str, str | None]) -> None:
        """Take one photo if it fits (see `admits`)."""
        if self.admits(len(data), shown):
            self.photos.append((name, data))
            self.size += len(data)

    def left_out(self, count: int) -> None:
        self.more_left_out += count

    def note(self, refusal: UploadRefusal) -> None:
        self.notes.append(refusal)

    def refusals(self) -> list[UploadRefusal]:
        """The refusals, at most MAX_NOTES of them one by one, then the budget's, if it ran out."""
        said = self.notes[:MAX_NOTES]
        if len(self.notes) > MAX_NOTES:
            said.append(UploadRefusal("more_left_out", count=len(self.notes) - MAX_NOTES))
        if self.full is not None:
            file, zip_name = self.first_left_out
            said.append(UploadRefusal("batch_full", file=file, zip=zip_name, more=self.more_left_out, **self.full))
        return said


def _expand(zip_name: str, data: bytes, budget: _Budget) -> None:
    """Take the photos of one ZIP into the batch's budget; a member that cannot be taken is named."""
    if data.count(_ZIP_ENTRY) > MAX_ZIP_FILES:
        budget.note(UploadRefusal("zip_too_many_files", zip=zip_name, limit=MAX_ZIP_FILES, photos=MAX_PHOTOS))
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        budget.note(UploadRefusal("zip_unreadable", zip=zip_name))
        return
    with archive:
        members = [info for info in archive.infolist() if _is_photo_entry(info)]
        for n, info in enumerate(members):
            if budget.full is not None:
                budget.left_out(len(members) - n)
                return
            base = info.filename.rsplit("/", 1)[-1]
            shown = (base, zip_name)
            if info.file_size > MAX_FILE_BYTES:  # from the header: nothing of it is read
                budget.note(UploadRefusal("upload_too_big", file=base, zip=zip_name, size=info.file_size,
                                          limit=MAX_FILE_BYTES))
                continue
            if not budget.admits(info.file_size, shown):  # from the header too: past the budget, not read
                continue
            member = _read(archive, info, budget.room())
            if member is None:
                budget.note(UploadRefusal("member_unreadable", file=base, zip=zip_name))
            else:
                budget.take(base, member, shown)


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """A member's bytes, inflated a chunk at a time and given up past `limit` whatever its header said;
    None when it is damaged, encrypted, or longer than the limit."""
    buffer = io.BytesIO()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                if buffer.tell() + len(chunk) > limit:
                    return None
                buffer.write(chunk)
    except _ZIP_ERRORS:
        return None
    return buffer.getvalue()


def _count_photos(data: bytes) -> int:
    """How many photos a ZIP left out whole would have given, for the refusal; 1 when it cannot say."""
    if data.count(_ZIP_ENTRY) > MAX_ZIP_FILES:
        return 1
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(map(_is_photo_entry, archive.infolist())) or 1
    except _ZIP_ERRORS:
        return 1


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _is_photo_entry(info: zipfile.ZipInfo) -> bool:
    """Not a folder, a hidden file, or macOS's resource forks."""
    base = info.filename.rsplit("/", 1)[-1]
    return not (info.is_dir() or not base or base.startswith(".") or "__MACOSX" in info.filename)

