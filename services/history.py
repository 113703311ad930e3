"""The session's attempts: a bounded, newest-first list kept in `st.session_state`.

Plain Python so it can be tested alone. Derived images (slider previews, thumbnail) are made once
when an item is added, never on a rerun. Attached to a store (services/store.py), the list is that store's
cache for one browser: every change is written through, and `sync` reads in what other sessions changed.
A result the store keeps is held without its full-size bytes (a `KeptItem`: previews and thumbnail only),
which are read back from the store when a download or an export asks; one the store refused, or any result
of a history without a store, is held whole.
The item itself, its download name and the bounds live in services/items.py, which the store shares.
"""

from __future__ import annotations

import logging
import functools
import time
from collections.abc import Callable

from services.items import MAX_BYTES, MAX_ITEMS, HistoryItem, KeptItem, ResultGone, over_bounds
from services.store import Store, StoreError

log = logging.getLogger(__name__)
SYNC_SECONDS = 1.0  # how stale the cache may be before a rerun asks the store again


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
        """What all items weigh against the bounds: their full-size results too, wherever those are held."""
        return sum(item.nbytes for item in self._items)

    def attach(self, store: Store, owner: str) -> None:
        """Keep this history in `store` under `owner` from now on: what the session holds is written there,
        and what the store holds for this owner is read in."""
        self.store, self.owner, self._unkept, self._written = store, owner, set(), set()
        for item in reversed(self._items):
            self._keep(item)  # one held without its bytes reads them from where they were kept until now
        # ... and from now on reads them under this owner
        self._items = [KeptItem(item, self._reader(item.id))
                       if isinstance(item, KeptItem) and item.id not in self._unkept else item for item in self._items]
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
        except StoreError as exc:
            log.warning("%s; showing what this session holds", exc)
            return
        kept = [self._slim(item) for item in kept if item is not None]
        kept += [held[item_id] for item_id in self._unkept if item_id in held]
        self._items = sorted(kept, key=lambda i: i.created, reverse=True)

    def writer(self) -> Callable[[HistoryItem], None] | None:
        """A function a run's worker thread calls with each finished result, so it is kept before the page
        hears of it and a closed tab loses nothing; None while this history has no store."""
        if self.store is None:
            return None

        def keep(item: HistoryItem) -> None:
            owner = self.owner  # the owner as it is now: after Forget my photos, the browser's new key
            try:
                self.store.put(owner, item)
            except StoreError as exc:  # the session still takes the result when it collects the run
                log.warning("%s; the result is kept when the page collects it", exc)
            else:
                self._written.add((owner, item.id))

        return keep

    def _keep(self, item: HistoryItem) -> None:
        try:
            self.store.put(self.owner, item)
        except StoreError as exc:
            log.warning("%s; the result stays in this session only", exc)
            self._unkept.add(item.id)
        except ResultGone:  # held without its bytes, which are no longer kept: the next sync lets it go
            log.warning("history store: a result's bytes were no longer kept; it goes from this session too")

    def _slim(self, item: HistoryItem) -> HistoryItem:
        """What the session holds of `item`: without its full-size bytes when the store keeps them."""
        if self.store is None or isinstance(item, KeptItem) or item.id in self._unkept:
            return item
        return KeptItem(item, self._reader(item.id))

    def _reader(self, item_id: str) -> Callable[[], bytes | None]:
        """Reads result `item_id`'s full-size bytes back from the store, under this history's owner of now."""
        return functools.partial(_read, self.store, self.owner, item_id)

    def add(self, item: HistoryItem) -> list[HistoryItem]:
        """Put `item` first (writing it through to the store); return the oldest items evicted to stay
        within the bounds."""
        if self.store is not None and (self.owner, item.id) not in self._written:
            self._keep(item)  # not yet kept by the run's worker (or kept under a key since forgotten)
        self._written.discard((self.owner, item.id))
        # a sync may already have read it in from the store, where the run's worker kept it: never twice
        self._items = [held for held in self._items if held.id != item.id]
        self._items.insert(0, self._slim(item))
        evicted = over_bounds(self._items, self.max_items, self.max_bytes)
        del self._items[len(self._items) - len(evicted):]
        return evicted[::-1]  # oldest first

    def get(self, item_id: str) -> HistoryItem | None:
        """The item with this id, or None when it was deleted or evicted."""
        return next((item for item in self._items if item.id == item_id), None)

    def remove(self, item_id: str) -> bool:
        """Delete one item, from the store too; False when it was not there."""
        before = len(self._items)
        self._items = [item for item in self._items if item.id != item_id]
        if self.store is not None:
            try:
                self.store.delete(self.owner, item_id)
            except StoreError as exc:
                log.warning("%s; could not delete", exc)
        return len(self._items) < before

    def clear(self) -> bool:
        """Delete every item, and every result the store keeps for this owner. False, with nothing cleared,
        when the store could not delete them: a person is never told their photos are gone when they are not."""
        if self.store is not None:
            try:
                self.store.forget(self.owner)
            except StoreError as exc:
                log.warning("%s; could not forget", exc)
                return False
        self._items.clear()
        return True


def _read(store: Store, owner: str, item_id: str) -> bytes | None:
    """A kept result's full-size bytes; None when they can no longer be read. Safe from any thread."""
    try:
        return store.result(owner, item_id)
    except StoreError as exc:
        log.warning("%s; a result could not be read back", exc)
        return None
