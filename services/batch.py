"""Many replacements at once: many photos × one prompt (Batch) or one photo × many prompts (Variants).

Worker threads do only I/O and image work, a bounded number at a time, each waiting its turn on the
shared key's limiter; the page polls the tasks and moves finished results into history as they come.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from services import engines, export, images, jobs
from services.history import HistoryItem
from services.quota import Limiter

log = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 4
MAX_PHOTOS = 50  # per batch: enough for a product shoot, not enough to empty a shared key by accident
MAX_ZIP_BYTES = 300 * 1024 * 1024  # uncompressed total read out of one uploaded ZIP

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"


@dataclass
class Task:
    """One photo × one prompt, and how it went."""

    source_name: str
    prompt: str
    data: bytes | None = None  # the uploaded bytes, until prepared
    prepared: images.PreparedImage | None = None
    before_preview: bytes | None = None
    status: str = WAITING
    error: Exception | None = None  # why it failed: facts, turned into a sentence by the page
    retryable: bool = False
    item: HistoryItem | None = None
    collected: bool = False  # moved into history already
    submitted: bool = False  # handed to a worker: never twice, or a photo is paid for twice
    waiting: tuple[int, float] | None = None  # (place in line, about how many seconds) while the shared key is busy
    released: bool = False  # done, but its result is no longer kept (see Batch.release)
    reply: engines.ReplaceResult | None = None  # paid for, previews not yet made: a retry does not pay again
    seconds: float | None = None  # how long it took, kept after the result is released


@dataclass
class Batch:
    """The tasks of one batch run and the settings they share."""

    tasks: list[Task]
    image_type: str
    engine: str
    concurrency: int = DEFAULT_CONCURRENCY
    owner_key: bool = False  # run on the app owner's key: its results count towards the session cap
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)  # stop what has not been sent
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def counts(self) -> dict[str, int]:
        """How many tasks are in each state."""
        with self._lock:
            states = [task.status for task in self.tasks]
        return {state: states.count(state) for state in (WAITING, RUNNING, DONE, FAILED)}

    @property
    def finished(self) -> bool:
        """True when no task is waiting or running."""
        counts = self.counts()
        return counts[WAITING] + counts[RUNNING] == 0

    def start(self, *, api_key: str | None, cost: float, limiter: Limiter | None) -> None:
        """Run every waiting task in the background and return at once. At most `concurrency` requests are
        out at a time; photos are prepared ahead of them on a worker of their own, and a result is previewed
        after its slot is handed on, so the slots spend their time on Novita, not on decoding and encoding."""
        self.cancel.clear()
        with self._lock:
            pending = [task for task in self.tasks if task.status == WAITING and not task.submitted]
            for task in pending:
                task.submitted = True
        if not pending:
            return
        slots = threading.BoundedSemaphore(max(1, self.concurrency))
        preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-prepare")
        # twice the slots: while some workers make previews, others hold every slot
        running = ThreadPoolExecutor(max_workers=2 * max(1, self.concurrency), thread_name_prefix="batch")
        for task in pending:
            running.submit(self._run, task, preparing.submit(self._prepare, task), slots, api_key, cost, limiter)
        preparing.shutdown(wait=False)  # each pool ends once its queue is done
        running.shutdown(wait=False)

    def retry_failed(self, *, api_key: str | None, cost: float, limiter: Limiter | None) -> int:
        """Put the failed tasks a retry can help back in line and run them again; returns how many."""
        with self._lock:
            failed = [task for task in self.tasks if task.status == FAILED and task.retryable]
            for task in failed:
                task.status, task.error, task.retryable, task.submitted = WAITING, None, False, False
        self.start(api_key=api_key, cost=cost, limiter=limiter)
        return len(failed)

    def release(self, kept: Callable[[str], bool]) -> int:
        """Let go of the results already handed over that `kept(item id)` says history no longer holds
        (evicted to stay within its bounds, or deleted), so a batch never holds more than history does;
        returns how many were let go. Their rows still say done; their files are gone from the ZIP."""
        released = 0
        with self._lock:
            for task in self.tasks:
                if task.collected and task.item is not None and not kept(task.item.id):
                    task.seconds, task.item, task.released = task.item.seconds, None, True
                    released += 1
        return released

    def rows(self, describe: Callable[[Exception], str]) -> list[export.Row]:
        """Every task as a line of the results ZIP's manifest, with its image while it is kept; `describe`
        says a failure in words."""
        with self._lock:
            return [export.Row(t.source_name, t.prompt, self.image_type, self.engine, item=t.item,
                               error=describe(t.error) if t.error is not None else None,
                               seconds=t.seconds if t.released else None) for t in self.tasks]

    def collect(self) -> list[Task]:
        """Finished tasks not yet handed over (each is returned once), so the page can add them to history."""
        with self._lock:
            ready = [task for task in self.tasks if task.status == DONE and not task.collected]
            for task in ready:
                task.collected = True
        return ready

    def _prepare(self, task: Task) -> None:
        """Prepare a task's photo (and its slider preview) unless it already is, or the batch was cancelled."""
        if task.prepared is None and not self.cancel.is_set():
            task.prepared = images.prepare(task.data or b"", task.source_name)
            task.before_preview = task.prepared.preview
            task.data = None  # the prepared copy is all that is needed from here on

    def _run(self, task: Task, prepared: Future, slots: threading.Semaphore, api_key: str | None, cost: float,
             limiter: Limiter | None) -> None:
        started = time.monotonic()
        try:
            prepared.result()  # the photo's preparation: its ImageError, if any, is this task's failure
            if task.reply is None:
                if not self._take(slots):
                    raise jobs.Cancelled("Cancelled before it was sent; nothing was spent.")
                try:
                    started = time.monotonic()  # its time at Novita and after, not its wait for a free slot
                    with self._lock:
                        task.status = RUNNING
                    task.reply = jobs.send(task.prepared, task.prompt, self.image_type, engine=self.engine,
                                           api_key=api_key, limiter=limiter, cancel=self.cancel,
                                           progress=functools.partial(_note_wait, task), owner_key=self.owner_key)
                finally:
                    slots.release()
            item = jobs.finish(task.prepared, task.before_preview, task.prompt, self.image_type, task.reply,
                               engine=self.engine, source_name=task.source_name, cost=cost, started=started)
        except Exception as exc:  # one photo's failure never stops the others
            self._failed(task, exc)
            return
        with self._lock:
            task.item, task.status = item, DONE
            # what made it is in the history item now; the batch keeps no second copy
            task.reply = task.prepared = task.before_preview = None

    def _take(self, slots: threading.Semaphore) -> bool:
        """Wait for a free slot; False once the batch is cancelled, so Cancel the rest is not held up by the
        requests already out."""
        while not slots.acquire(timeout=0.2):
            if self.cancel.is_set():
                return False
        if self.cancel.is_set():  # cancelled as the slot came free: its photo may not even be prepared
            slots.release()
            return False
        return True

    def _failed(self, task: Task, exc: Exception) -> None:
        retryable = jobs.retryable(exc) or isinstance(exc, jobs.Cancelled)  # a cancelled photo can be run later
        if not isinstance(exc, jobs.EXPECTED):
            log.exception("batch: unexpected failure", exc_info=exc)
        with self._lock:
            task.status, task.error, task.retryable = FAILED, exc, retryable


def _note_wait(task: Task, stage=None, step=None, waiting: tuple[int, float] | bool | None = None) -> None:
    """A `jobs.send` progress report: keep the task's place in line for the shared key while it waits."""
    if waiting is not None:
        task.waiting = waiting or None


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
