"""The session's attempts: a bounded, newest-first list kept in `st.session_state`.

Plain Python so it can be tested alone. Derived images (slider previews, thumbnail) are made once
when an item is added, never on a rerun.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from dataclasses import dataclass, field

MAX_ITEMS = 20
MAX_BYTES = 150 * 1024 * 1024
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


class History:
    """Newest-first attempts, bounded by count and by bytes; the oldest go first."""

    def __init__(self, max_items: int = MAX_ITEMS, max_bytes: int = MAX_BYTES) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: list[HistoryItem] = []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    @property
    def nbytes(self) -> int:
        """Bytes held by all items."""
        return sum(item.nbytes for item in self._items)

    def add(self, item: HistoryItem) -> list[HistoryItem]:
        """Put `item` first; return the oldest items evicted to stay within the bounds."""
        self._items.insert(0, item)
        evicted: list[HistoryItem] = []
        while len(self._items) > 1 and (len(self._items) > self.max_items or self.nbytes > self.max_bytes):
            evicted.append(self._items.pop())
        return evicted

    def get(self, item_id: str) -> HistoryItem | None:
        """The item with this id, or None when it was deleted or evicted."""
        return next((item for item in self._items if item.id == item_id), None)

    def remove(self, item_id: str) -> bool:
        """Delete one item; False when it was not there."""
        before = len(self._items)
        self._items = [item for item in self._items if item.id != item_id]
        return len(self._items) < before

    def clear(self) -> None:
        """Delete every item."""
        self._items.clear()
