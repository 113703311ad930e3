"""Results that outlive a browser session, behind one small interface: on this server's disk by default, or in
an S3-compatible bucket when `HISTORY_STORE_URL` names one. Bounded per browser (as the session's history) and
in total, and expired after `HISTORY_TTL_HOURS`.

A browser is known here only by a hash of its random token (`owner_of`), never by the token itself. Each result
is one ZIP (meta.json, the full-size result, the slider previews, the thumbnail), written whole, so a reader
never sees half of one; its CRCs catch a damaged file, which is then skipped with a log line and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from services import config
from services.items import EXTENSIONS, MAX_BYTES, MAX_ITEMS, HistoryItem, over_bounds

T = TypeVar("T")

log = logging.getLogger(__name__)
META = ("id", "created", "prompt", "image_type", "engine", "seconds", "source_name", "size", "cost", "notices")
PREVIEWS = {"before_preview": "before.jpg", "after_preview": "after.jpg", "thumbnail": "thumbnail.jpg"}
NAME = re.compile(r"^[0-9a-f]{8,64}$")  # owners are hashes and item ids hex: nothing else reaches a path or key
DEFAULT_DIR = Path(tempfile.gettempdir()) / "replace-background-studio" / "history"


class StoreError(OSError):
    """The store could not do what was asked; the session goes on with what it holds in memory. Every failure
    of a store's methods is one (a disk's or a bucket's); an OSError, as what it wraps mostly is."""


@dataclass(frozen=True)
class Entry:
    """What the index knows of one kept result, enough to order and bound without reading it."""

    id: str
    created: float
    nbytes: int


def _row_nbytes(row: tuple[str, Entry]) -> int:
    """What one (owner, entry) of the index weighs, for the bounds."""
    return row[1].nbytes


def owner_of(token: str) -> str:
    """The name a browser's results are kept under: a hash of its token, so the token is stored nowhere."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:40]


def pack(item: HistoryItem) -> bytes:
    """One result as a ZIP: meta.json, `result.<ext>` and the three JPEG previews (stored, not recompressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("meta.json", json.dumps({name: getattr(item, name) for name in META}))
        archive.writestr(f"result.{EXTENSIONS[item.image_type]}", item.result)
        for field_name, file_name in PREVIEWS.items():
            archive.writestr(file_name, getattr(item, field_name))
    return buffer.getvalue()


def unpack(data: bytes) -> HistoryItem:
    """The result a `pack` ZIP holds; raises ValueError (or zipfile.BadZipFile) for a damaged one."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(archive.read("meta.json"))
        parts = {name: archive.read(file) for name, file in PREVIEWS.items()}  # reading checks each CRC
        parts["result"] = archive.read(f"result.{EXTENSIONS[meta['image_type']]}")
    meta["size"], meta["notices"] = tuple(meta["size"]), tuple(meta["notices"])
    return HistoryItem(**meta, **parts)


@dataclass(frozen=True)
class Receipt:
    """A task Novita accepted and whose image is not yet kept: enough to collect it after a restart without
    submitting it again (the prepared photo for fitting and the subject, what the person asked, whose it is).
    `boot` names the process that submitted it; the key is never kept, so only a task on the owner's key
    (`owner_key`) can be collected by another process."""

    owner: str
    task_id: str
    engine: str
    submitted: float  # time.time()
    boot: str
    prompt: str
    image_type: str
    source_name: str
    lock: bool
    owner_key: bool
    cost: float
    notices: tuple[str, ...]
    photo: bytes = field(repr=False)

    @property
    def key(self) -> str:
        """The receipt's file name: the owner and a hash of the task id (ids are Novita's text)."""
        return f"{self.owner}-{hashlib.sha256(self.task_id.encode()).hexdigest()[:24]}"


RECEIPT_META = tuple(name for name in Receipt.__dataclass_fields__ if name != "photo")


def pack_receipt(receipt: Receipt) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("meta.json", json.dumps({name: getattr(receipt, name) for name in RECEIPT_META}))
        archive.writestr("photo", receipt.photo)
    return buffer.getvalue()


def unpack_receipt(data: bytes) -> Receipt:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(archive.read("meta.json"))
        photo = archive.read("photo")
    meta["notices"] = tuple(meta["notices"])
    return Receipt(**meta, photo=photo)


RECEIPT_NAME = re.compile(r"^[0-9a-f]{8,64}-[0-9a-f]{24}$")


class Store(ABC):
    """Kept results by owner. Every method may raise StoreError; none raises for one damaged result."""

    def __init__(self, *, ttl_seconds: float, max_total_bytes: int, max_items: int = MAX_ITEMS,
                 max_bytes: int = MAX_BYTES) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_total_bytes = max_total_bytes
        self.max_items = max_items
        self.max_bytes = max_bytes

    def cutoff(self) -> float:
        """Results created before this time have expired."""
        return time.time() - self.ttl_seconds

    def _dropped(self, kept: list[tuple[str, Entry]], owner: str) -> list[tuple[str, Entry]]:
        """What a `put` for `owner` drops, of every kept (owner, entry), newest first: the expired, `owner`'s
        oldest past the bounds of one browser, and the oldest anywhere past the store's total."""
        cutoff = self.cutoff()
        live = [row for row in kept if row[1].created >= cutoff]
        mine = [row for row in live if row[0] == owner]
        dropped = [row for row in kept if row[1].created < cutoff]
        dropped += over_bounds(mine, self.max_items, self.max_bytes, _row_nbytes)
        dropped += over_bounds(live, float("inf"), self.max_total_bytes, _row_nbytes)
        return list(dict.fromkeys(dropped))  # a result past both bounds is dropped once

    @abstractmethod
    def put(self, owner: str, item: HistoryItem) -> list[str]:
        """Keep `item` (a second put of the same id does nothing); return the ids of this owner's results
        dropped to stay within the bounds. Expired results and the store's total bound are handled here too."""

    @abstractmethod
    def entries(self, owner: str) -> list[Entry]:
        """This owner's unexpired results, newest first, without reading them."""

    @abstractmethod
    def load(self, owner: str, item_id: str) -> HistoryItem | None:
        """One kept result; None (with a log line, and the damaged file removed) when it is missing or damaged."""

    def result(self, owner: str, item_id: str) -> bytes | None:
        """One kept result's full-size bytes alone (a download, an export); None as `load` gives None.
        Safe from any thread, as every method here."""
        item = self.load(owner, item_id)
        return None if item is None else item.result

    @abstractmethod
    def delete(self, owner: str, item_id: str) -> None:
        """Remove one result now."""

    @abstractmethod
    def forget(self, owner: str) -> None:
        """Remove every result of this owner now: deleted, not hidden."""

    def items(self, owner: str) -> list[HistoryItem]:
        """This owner's readable results, newest first."""
        return [item for entry in self.entries(owner) if (item := self.load(owner, entry.id)) is not None]

    # Receipts of tasks in flight: written when Novita accepts a task, removed once its result is kept.
    @abstractmethod
    def put_receipt(self, receipt: Receipt) -> None:
        """Keep a receipt, whole or not at all."""

    @abstractmethod
    def receipts(self) -> list[Receipt]:
        """Every readable receipt, of every owner (a damaged one is removed with a log line)."""

    @abstractmethod
    def drop_receipt(self, receipt: Receipt) -> None:
        """Remove a receipt; removing one already gone does nothing."""


def _check(*names: str) -> None:
    for name in names:
        if not NAME.match(name):
            msg = "history store: not an owner or result id"
            raise StoreError(msg)


def _unlink(path: Path) -> None:
    """Remove a file if it is there; a file that cannot be removed is the store's failure."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"history store: cannot remove a file ({type(exc).__name__})") from exc


def _result_member(path: Path) -> bytes:
    """The result's own bytes from a kept result's ZIP: only that member is read (and its CRC checked)."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.startswith("result.")))


class LocalStore(Store):
    """Results as ZIP files under `root/<owner>/`, indexed in `root/index.sqlite3`. SQLite's locking makes it
    safe for several sessions and several processes sharing the folder."""

    def __init__(self, root: Path, **bounds) -> None:
        super().__init__(**bounds)
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("CREATE TABLE IF NOT EXISTS items (owner TEXT NOT NULL, id TEXT NOT NULL, "
                           "created REAL NOT NULL, nbytes INTEGER NOT NULL, PRIMARY KEY (owner, id))")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"history store: cannot use {self.root} ({type(exc).__name__})") from exc

    @contextlib.contextmanager
    def _db(self):
        try:
            db = sqlite3.connect(self.root / "index.sqlite3", timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"history store index: {exc}") from exc
        try:
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"history store index: {exc}") from exc
        finally:
            db.close()

    def _path(self, owner: str, item_id: str) -> Path:
        _check(owner, item_id)
        return self.root / owner / f"{item_id}.zip"

    def put(self, owner: str, item: HistoryItem) -> list[str]:
        path = self._path(owner, item.id)
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
                    part.write(pack(item))
                os.replace(part.name, path)  # whole or not at all
        except OSError as exc:
            raise StoreError(f"history store: cannot write a result ({type(exc).__name__})") from exc
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time across processes: the bounds hold
            db.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)", (owner, item.id, item.created, item.nbytes))
            kept = [(row[0], Entry(*row[1:])) for row in db.execute(
                "SELECT owner, id, created, nbytes FROM items ORDER BY created DESC")]
            dropped = [(who, entry.id) for who, entry in self._dropped(kept, owner)]
            db.executemany("DELETE FROM items WHERE owner = ? AND id = ?", dropped)
            db.execute("COMMIT")
        for dropped_owner, dropped_id in dropped:
            _unlink(self._path(dropped_owner, dropped_id))
        return sorted({dropped_id for dropped_owner, dropped_id in dropped if dropped_owner == owner})

    def entries(self, owner: str) -> list[Entry]:
        _check(owner)
        with self._db() as db:
            return [Entry(*row) for row in db.execute(
                "SELECT id, created, nbytes FROM items WHERE owner = ? AND created >= ? ORDER BY created DESC",
                (owner, self.cutoff()))]

    def load(self, owner: str, item_id: str) -> HistoryItem | None:
        return self._read(owner, item_id, lambda path: unpack(path.read_bytes()))

    def result(self, owner: str, item_id: str) -> bytes | None:
        return self._read(owner, item_id, _result_member)

    def _read(self, owner: str, item_id: str, read: Callable[[Path], T]) -> T | None:
        """`read(path)` of a kept result's file; a file missing or damaged is logged, its entry removed, and None."""
        path = self._path(owner, item_id)
        try:
            return read(path)
        except FileNotFoundError:
            log.warning("history store: a kept result's file is missing; skipped")
        except (OSError, ValueError, KeyError, TypeError, StopIteration, zipfile.BadZipFile) as exc:
            log.warning("history store: a kept result's file is damaged (%s); skipped and removed",
                        type(exc).__name__)
        self.delete(owner, item_id)
        return None

    def delete(self, owner: str, item_id: str) -> None:
        path = self._path(owner, item_id)
        with self._db() as db:
            db.execute("DELETE FROM items WHERE owner = ? AND id = ?", (owner, item_id))
        _unlink(path)

    def forget(self, owner: str) -> None:
        _check(owner)
        with self._db() as db:
            db.execute("DELETE FROM items WHERE owner = ?", (owner,))
        shutil.rmtree(self.root / owner, ignore_errors=True)
        for receipt in (self.root / "receipts").glob(f"{owner}-*.zip"):  # tasks in flight, with their photos
            _unlink(receipt)


    def _receipt_path(self, receipt_key: str) -> Path:
        if not RECEIPT_NAME.match(receipt_key):
            raise StoreError("history store: not a receipt name")
        return self.root / "receipts" / f"{receipt_key}.zip"

    def put_receipt(self, receipt: Receipt) -> None:
        path = self._receipt_path(receipt.key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
                part.write(pack_receipt(receipt))
            os.replace(part.name, path)
        except OSError as exc:
            raise StoreError(f"history store: cannot write a task's receipt ({type(exc).__name__})") from exc

    def receipts(self) -> list[Receipt]:
        found = []
        for path in sorted((self.root / "receipts").glob("*.zip")):
            try:
                found.append(unpack_receipt(path.read_bytes()))
            except FileNotFoundError:
                continue  # collected meanwhile
            except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                log.warning("history store: a task's receipt is damaged (%s); removed", type(exc).__name__)
                _unlink(path)
        return found

    def drop_receipt(self, receipt: Receipt) -> None:
        _unlink(self._receipt_path(receipt.key))


class S3Store(Store):
    """Results as objects `<prefix><owner>/<created ms>-<bytes>-<id>.zip` in an S3-compatible bucket, so
    replicas behind a load balancer share them. The key carries what the bounds need, so one listing orders
    and bounds an owner's results. Credentials and endpoint come from boto3's usual settings (AWS_*)."""

    def __init__(self, bucket: str, prefix: str = "", *, client=None, **bounds) -> None:
        super().__init__(**bounds)
        if client is None:
            import boto3  # only when the setting asks for a bucket

            client = boto3.client("s3")
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _list(self, owner: str = "") -> list[tuple[str, str, Entry]]:
        """(key, owner, entry) for every object under the prefix (or under one owner), newest first."""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                            Prefix=self.prefix + (owner and owner + "/"))
            for page in pages:
                for obj in page.get("Contents", []):
                    match = re.match(r"^([0-9a-f]+)/(\d+)-(\d+)-([0-9a-f]+)\.zip$", obj["Key"][len(self.prefix):])
                    if match:
                        who, millis, nbytes, item_id = match.groups()
                        found.append((obj["Key"], who, Entry(item_id, int(millis) / 1000, int(nbytes))))
        except Exception as exc:  # botocore's errors, imported lazily: the bucket cannot be read
            raise StoreError(f"history store bucket: {type(exc).__name__}") from exc
        return sorted(found, key=lambda row: row[2].created, reverse=True)

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the most one request may name
            self._call("delete_objects", Bucket=self.bucket,
                       Delete={"Objects": [{"Key": key} for key in keys[start:start + 1000]], "Quiet": True})

    def _call(self, method: str, **kwargs):
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:  # botocore's errors, imported lazily
            raise StoreError(f"history store bucket: {type(exc).__name__}") from exc

    def put(self, owner: str, item: HistoryItem) -> list[str]:
        _check(owner, item.id)
        if any(entry.id == item.id for _, _, entry in self._list(owner)):
            return []
        key = f"{self.prefix}{owner}/{int(item.created * 1000):013d}-{item.nbytes}-{item.id}.zip"
        self._call("put_object", Bucket=self.bucket, Key=key, Body=pack(item), ContentType="application/zip")
        everyone = self._list()
        keys = {(who, entry.id): key for key, who, entry in everyone}
        dropped = self._dropped([(who, entry) for _, who, entry in everyone], owner)
        self._delete_keys(sorted(keys[who, entry.id] for who, entry in dropped))
        return sorted(entry.id for who, entry in dropped if who == owner)

    def entries(self, owner: str) -> list[Entry]:
        _check(owner)
        cutoff = self.cutoff()
        return [entry for _, _, entry in self._list(owner) if entry.created >= cutoff]

    def _key(self, owner: str, item_id: str) -> str | None:
        _check(owner, item_id)
        return next((key for key, _, entry in self._list(owner) if entry.id == item_id), None)

    def load(self, owner: str, item_id: str) -> HistoryItem | None:
        key = self._key(owner, item_id)
        if key is None:
            log.warning("history store: a kept result is missing from the bucket; skipped")
            return None
        try:
            data = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:  # botocore's errors, imported lazily
            log.warning("history store: a kept result could not be read from the bucket (%s); skipped",
                        type(exc).__name__)
            return None
        try:
            return unpack(data)
        except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            log.warning("history store: a kept result in the bucket is damaged (%s); skipped and removed",
                        type(exc).__name__)
            self._delete_keys([key])
            return None

    def delete(self, owner: str, item_id: str) -> None:
        key = self._key(owner, item_id)
        if key is not None:
            self._delete_keys([key])

    def forget(self, owner: str) -> None:
        _check(owner)
        self._delete_keys([key for key, _, _ in self._list(owner)])
        pages = self._call("get_paginator", operation_name="list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}receipts/{owner}-")
        try:  # tasks in flight, with their photos
            self._delete_keys([obj["Key"] for page in pages for obj in page.get("Contents", [])])
        except StoreError:
            raise
        except Exception as exc:  # botocore's errors, imported lazily
            raise StoreError(f"history store bucket: {type(exc).__name__}") from exc


    def put_receipt(self, receipt: Receipt) -> None:
        if not RECEIPT_NAME.match(receipt.key):
            raise StoreError("history store: not a receipt name")
        self._call("put_object", Bucket=self.bucket, Key=f"{self.prefix}receipts/{receipt.key}.zip",
                   Body=pack_receipt(receipt), ContentType="application/zip")

    def receipts(self) -> list[Receipt]:
        found = []
        pages = self._call("get_paginator", operation_name="list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}receipts/")
        try:
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        except Exception as exc:  # botocore's errors, imported lazily
            raise StoreError(f"history store bucket: {type(exc).__name__}") from exc
        for key in keys:
            try:
                data = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                found.append(unpack_receipt(data))
            except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                log.warning("history store: a task's receipt is damaged (%s); removed", type(exc).__name__)
                self._delete_keys([key])
            except Exception as exc:  # botocore's errors: gone meanwhile, or unreadable now
                log.warning("history store: a task's receipt could not be read (%s)", type(exc).__name__)
        return found

    def drop_receipt(self, receipt: Receipt) -> None:
        self._delete_keys([f"{self.prefix}receipts/{receipt.key}.zip"])


def from_settings() -> Store | None:
    """The store the settings ask for, or None when `HISTORY_TTL_HOURS` is 0 (results live in the session only).
    Raises config.ConfigError for a `HISTORY_STORE_URL` that is not `s3://bucket/prefix`."""
    ttl = config.history_ttl_hours()
    if ttl <= 0:
        return None
    bounds = {"ttl_seconds": ttl * 3600, "max_total_bytes": int(config.history_store_max_mb() * 2**20)}
    url = config.setting("HISTORY_STORE_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            msg = "HISTORY_STORE_URL must name a bucket as s3://bucket/prefix (endpoint and keys come from AWS_*)."
            raise config.ConfigError(msg)
        return S3Store(parts.netloc, parts.path, **bounds)
    return LocalStore(Path(config.setting("HISTORY_STORE_DIR") or DEFAULT_DIR), **bounds)
