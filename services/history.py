"""The session's attempts: a bounded, newest-first list kept in `st.session_state`.

Plain Python so it can be tested alone. Derived images (slider previews, thumbnail) are made once
when an item is added, never on a rerun. Attached to a store (services/store.py), the list is that store's
cache for one browser: every change is written through, and `sync` reads in what other sessions changed.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: at run time the store imports this module, not the reverse
    from services.store import Store

log = logging.getLogger(__name__)
MAX_ITEMS = 20
MAX_BYTES = 150 * 1024 * 1024
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
SYNC_SECONDS = 1.0  # how stale the cache may be before a rerun asks the store again


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
        self.store: Store | None = None
        self.owner: str | None = None
        self._unkept: set[str] = set()  # ids the store refused to take: they live in this session only
        self._written: set[tuple[str, str]] = set()  # (owner, id) a run's worker has put: `add` need not again
        self._synced = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    @property
    def nbytes(self) -> int:
        """Bytes held by all items."""
        return sum(item.nbytes for item in self._items)

    def attach(self, store: Store, owner: str) -> None:
        """Keep this history in `store` under `owner` from now on: what the session holds is written there,
        and what the store holds for this owner is read in."""
        self.store, self.owner, self._unkept, self._written = store, owner, set(), set()
        for item in reversed(self._items):
            self._keep(item)
        self.sync(force=True)

    def sync(self, *, force: bool = False) -> None:
        """Bring the cache up to date with the store: results another session (or a run whose tab closed)
        kept appear, those deleted, expired or evicted elsewhere go. Reads only results not yet held."""
        if self.store is None or (not force and time.monotonic() - self._synced < SYNC_SECONDS):
            return
        self._synced = time.monotonic()
        held = {item.id: item for item in self._items}
        try:
            kept = [held.get(entry.id) or self.store.load(self.owner, entry.id)
                    for entry in self.store.entries(self.owner)]
        except OSError as exc:
            log.warning("%s; showing what this session holds", exc)
            return
        kept += [held[item_id] for item_id in self._unkept if item_id in held]
        self._items = sorted((item for item in kept if item is not None), key=lambda i: i.created, reverse=True)

    def writer(self) -> Callable[[HistoryItem], None] | None:
        """A function a run's worker thread calls with each finished result, so it is kept before the page
        hears of it and a closed tab loses nothing; None while this history has no store."""
        if self.store is None:
            return None

        def keep(item: HistoryItem) -> None:
            owner = self.owner  # the owner as it is now: after Forget my photos, the browser's new key
            try:
                self.store.put(owner, item)
            except OSError as exc:  # the session still takes the result when it collects the run
                log.warning("%s; the result is kept when the page collects it", exc)
            else:
                self._written.add((owner, item.id))

        return keep

    def _keep(self, item: HistoryItem) -> None:
        try:
            self.store.put(self.owner, item)
        except OSError as exc:
            log.warning("%s; the result stays in this session only", exc)
            self._unkept.add(item.id)

    def _call(self, method: str, *args) -> bool:
        """Call the store; False (with a log line) when it failed."""
        if self.store is None:
            return True
        try:
            getattr(self.store, method)(self.owner, *args)
        except OSError as exc:
            log.warning("%s; could not %s", exc, method)
            return False
        return True

    def add(self, item: HistoryItem) -> list[HistoryItem]:
        """Put `item` first (writing it through to the store); return the oldest items evicted to stay
        within the bounds."""
        if self.store is not None and (self.owner, item.id) not in self._written:
            self._keep(item)  # not yet kept by the run's worker (or kept under a key since forgotten)
        self._written.discard((self.owner, item.id))
        # a sync may already have read it in from the store, where the run's worker kept it: never twice
        self._items = [held for held in self._items if held.id != item.id]
        self._items.insert(0, item)
        evicted: list[HistoryItem] = []
        while len(self._items) > 1 and (len(self._items) > self.max_items or self.nbytes > self.max_bytes):
            evicted.append(self._items.pop())
        return evicted

    def get(self, item_id: str) -> HistoryItem | None:
        """The item with this id, or None when it was deleted or evicted."""
        return next((item for item in self._items if item.id == item_id), None)

    def remove(self, item_id: str) -> bool:
        """Delete one item, from the store too; False when it was not there."""
        before = len(self._items)
        self._items = [item for item in self._items if item.id != item_id]
        self._call("delete", item_id)
        return len(self._items) < before

    def clear(self) -> bool:
        """Delete every item, and every result the store keeps for this owner. False, with nothing cleared,
        when the store could not delete them: a person is never told their photos are gone when they are not."""
        if not self._call("forget"):
            return False
        self._items.clear()
        return True
