"""One finished result, the name it downloads as, and the bounds that keep a browser's results few and small.

A leaf: it imports nothing from services, so the session's history (services/history.py) and the store that
outlives the session (services/store.py) both build on it without importing each other. `over_bounds` is the
one place the eviction rule is written; both use it. `KeptItem` is a result whose full-size bytes stay in the
store: what a session holds of a result the store keeps.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TypeVar

MAX_ITEMS = 20  # results one browser keeps
MAX_BYTES = 150 * 1024 * 1024  # bytes one browser's results may hold
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


@dataclass(frozen=True)
class HistoryItem:
    """One finished attempt and everything needed to show and download it again."""

    prompt: str
    image_type: str  # "png" | "webp" | "jpeg"
    engine: str  # "novita" | "offline" | "cutout"
    seconds: float
    source_name: str  # the photo's file name as uploaded, for the download name
    result: bytes  # full-resolution result in image_type
    before_preview: bytes  # JPEG, slider-sized
    after_preview: bytes  # JPEG, slider-sized
    thumbnail: bytes  # JPEG, gallery-sized
    size: tuple[int, int] = (0, 0)
    cost: float = 0.0
    notices: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        """Bytes this item holds in memory."""
        return len(self.result) + len(self.before_preview) + len(self.after_preview) + len(self.thumbnail)

    @property
    def download_name(self) -> str:
        """`<original-name>-<prompt-slug>.<ext>`, safe on every file system."""
        return download_name(self.source_name, self.prompt, self.image_type)


class ResultGone(LookupError):
    """A kept result's full-size bytes could not be read back: deleted, expired or evicted meanwhile, or
    unreadable."""


class KeptItem(HistoryItem):
    """A result whose full-size bytes stay where a store keeps them. Held by a session it costs only its
    previews and thumbnail; `result` reads the bytes again each time it is asked (a download, an export) and
    raises ResultGone when they can no longer be read. Everything else is the item's own, `nbytes` included:
    the bounds weigh a result the same wherever its bytes are."""

    def __init__(self, item: HistoryItem, read: Callable[[], bytes | None]) -> None:
        for name in (f.name for f in fields(HistoryItem) if f.name != "result"):
            object.__setattr__(self, name, getattr(item, name))
        object.__setattr__(self, "_read", read)
        object.__setattr__(self, "_nbytes", item.nbytes)

    @property
    def result(self) -> bytes:
        data = self._read()
        if data is None:
            raise ResultGone("result no longer kept in the store")
        return data

    @property
    def nbytes(self) -> int:
        """Bytes the result weighs (its full-size bytes included, though they are not held here)."""
        return self._nbytes

    def _key(self) -> tuple:
        return (*(getattr(self, f.name) for f in fields(HistoryItem) if f.name != "result"), self._nbytes)

    def __eq__(self, other: object) -> bool:  # never reads the bytes: the rest tells one result from another
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"KeptItem(id={self.id!r}, prompt={self.prompt!r}, image_type={self.image_type!r}, kept elsewhere)"


def slug(text: str, max_len: int = 40) -> str:
    """Lower-case ASCII words joined by hyphens, cut at a word boundary; empty text gives ''."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(words) > max_len:
        cut = words[:max_len]
        words = cut if words[max_len] == "-" else (cut.rsplit("-", 1)[0] or cut)
    return words


def download_name(source_name: str, prompt: str, image_type: str) -> str:
    """The file name a result downloads as: `<original-name>-<prompt-slug>.<ext>`."""
    base = source_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    parts = [p for p in (slug(stem, 60) or "photo", slug(prompt)) if p]
    return "-".join(parts) + "." + EXTENSIONS[image_type]


Kept = TypeVar("Kept")


def over_bounds(newest_first: Sequence[Kept], max_items: float, max_bytes: float,
                nbytes: Callable[[Kept], int] = lambda kept: kept.nbytes) -> list[Kept]:
    """The eviction rule: the oldest results to drop so the rest (newest first) fit both bounds; the newest
    always stays, however large. `nbytes` says what one result weighs (its `nbytes`, unless told)."""
    total = 0
    for place, kept in enumerate(newest_first):
        total += nbytes(kept)
        if place and (place + 1 > max_items or total > max_bytes):
            return list(newest_first[place:])
    return []
