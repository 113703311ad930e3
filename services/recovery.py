"""Nothing paid for is lost: a task Novita accepted is written down at once, and collected after a restart.

A run's worker writes a receipt (`services.store.Receipt`) the moment Novita hands back a task id, and removes
it once the result is kept. A process that starts finds the receipts other processes left (a restart, a
crash) and collects them: it reads the task's result (never submitting it again), fits the image to the
photo, keeps it in that person's history under an id made from the task id (so collecting twice keeps it
once), then removes the receipt. The key is never written down, so only tasks on the owner's key can be
collected by another process; a task on a key a person pasted dies with its session, and says so in the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable

from services import config, engines, images, jobs, novita, workers
from services.store import Receipt, Store

log = logging.getLogger(__name__)
BOOT = uuid.uuid4().hex[:16]  # this process: its own receipts are its live workers' business
# A receipt another process wrote is collected only once that process's own wait for it must have ended
# (NOVITA_TIMEOUT after its submission, and this much more): a replica still alive finishes its own tasks.
GRACE_SECONDS = 15.0
OWNER = "recovery"  # the pools' owner for collection work, served in turn with every session


def item_id(task_id: str) -> str:
    """The history id of a task's result: the same wherever and however often it is collected."""
    return hashlib.sha256(task_id.encode()).hexdigest()[:12]


class Receipts:
    """What a run writes down for one browser: `where()` gives (store, owner) as they are now."""

    def __init__(self, where: Callable[[], tuple[Store | None, str | None]]) -> None:
        self._where = where

    def keep(self, handle: engines.Handle, *, prompt: str, image_type: str, source_name: str, lock: bool,
             owner_key: bool, cost: float, prepared: images.PreparedImage) -> Receipt | None:
        """Write the receipt of an accepted task; None (with a log line) when there is no store or it failed."""
        store, owner = self._where()
        if store is None or owner is None or handle.task_id is None:
            return None
        receipt = Receipt(owner, handle.task_id, handle.engine, time.time(), BOOT, prompt, image_type,
                          source_name, lock, owner_key, cost, prepared.notices, prepared.data)
        try:
            store.put_receipt(receipt)
        except OSError as exc:
            log.warning("%s; a restart now would lose this task's result", exc)
            return None
        return receipt

    def drop(self, receipt: Receipt | None) -> None:
        """The result is kept (or the task ended): its receipt goes."""
        store, _ = self._where()
        if receipt is None or store is None:
            return
        try:
            store.drop_receipt(receipt)
        except OSError as exc:
            log.warning("%s; a later start will find the result already kept", exc)


def collect_orphans(store: Store | None) -> int:
    """Queue the collection of every receipt another process left; returns how many were queued. Called once
    per process (app start, through the page's cached resource)."""
    if store is None:
        return 0
    try:
        found = [receipt for receipt in store.receipts() if receipt.boot != BOOT]
    except OSError as exc:
        log.warning("%s; tasks left by an earlier start are not collected now", exc)
        return 0
    queued = 0
    for receipt in found:
        if time.time() - receipt.submitted > store.ttl_seconds:
            log.warning("recovery: a task left by an earlier start is older than the history keeps; dropped")
            _drop(store, receipt)
        elif not receipt.owner_key or not config.api_key():
            log.warning("recovery: a task left by an earlier start was on a key that is not kept (a person's "
                        "own, or the owner's, now unset); its result cannot be collected")
            _drop(store, receipt)
        else:
            _when_due(store, receipt)
            queued += 1
    if queued:
        log.info("recovery: collecting %d task(s) left by an earlier start, without submitting them again", queued)
    return queued


def _when_due(store: Store, receipt: Receipt) -> None:
    """Queue the collection once the process that wrote the receipt would have given up on it."""
    try:
        limit = config.timeout()
    except config.ConfigError:
        limit = config.DEFAULT_TIMEOUT
    due = receipt.submitted + limit + GRACE_SECONDS - time.time()
    if due <= 0:
        _queue(store, receipt)
        return
    timer = threading.Timer(due, _queue, args=(store, receipt))
    timer.daemon = True
    timer.start()


def _queue(store: Store, receipt: Receipt) -> None:
    """Collect `receipt` unless its own process collected it meanwhile (and removed it)."""
    try:
        still = any(kept.key == receipt.key for kept in store.receipts())
    except OSError as exc:
        log.warning("%s; a task left by an earlier start is not collected now", exc)
        return
    if still:
        workers.sends().submit(OWNER, lambda: _collect(store, receipt), limit=4)


def _collect(store: Store, receipt: Receipt) -> None:
    """Send pool: read the task to its end and fetch its image; the finishing goes to the CPU pool."""
    engine = engines.REGISTRY.get(receipt.engine)
    job = engines.Job(receipt.photo, receipt.prompt, receipt.image_type, config.api_key())
    try:
        if engine is None:
            raise novita.ConfigurationError(f"no engine named {receipt.engine}")
        result = engine.collect(engines.Handle(receipt.engine, task_id=receipt.task_id), job)
    except novita.TaskTimeoutError:
        log.warning("recovery: a task left by an earlier start has not ended yet; a later start tries again")
        return
    except (novita.NovitaError, OSError) as exc:
        log.warning("recovery: a task left by an earlier start could not be collected (%s); dropped", exc)
        _drop(store, receipt)
        return
    workers.cpu().submit(OWNER, lambda: _keep(store, receipt, result), limit=1)


def _keep(store: Store, receipt: Receipt, result: engines.ReplaceResult) -> None:
    try:
        prepared = dataclasses.replace(images.prepare(receipt.photo, receipt.source_name), notices=receipt.notices)
        item = jobs.finish(prepared, prepared.preview, receipt.prompt, receipt.image_type, result,
                           engine=engines.REGISTRY[receipt.engine].family, source_name=receipt.source_name,
                           cost=receipt.cost, lock=receipt.lock and engines.REGISTRY[receipt.engine].redraws,
                           item_id=item_id(receipt.task_id), scope=receipt.owner)
        store.put(receipt.owner, item)
    except (images.ImageError, OSError) as exc:
        log.warning("recovery: a collected result could not be kept (%s)", exc)
        return
    _drop(store, receipt)
    log.info("recovery: a result left by an earlier start is in its owner's history")


def _drop(store: Store, receipt: Receipt) -> None:
    try:
        store.drop_receipt(receipt)
    except OSError as exc:
        log.warning("%s; the receipt stays", exc)


