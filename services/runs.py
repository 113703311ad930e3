"""One run of N tasks: the main page (one photo, one prompt), Variants (one photo × prompts) and Batch
(photos × one prompt) alike.

A task is prepared on the process's CPU pool, sent on its send pool (at most `concurrency` of a session at
once, the sessions served in turn), and finished (previews) on the CPU pool again, so a send slot is never
held for decoding; a result whose subject is laid back over Novita's scene is finished on the photo pool
(full-size work, one photo at a time for memory: `workers.photos`). A task for an engine of this server is
prepared and made on the photo pool instead of being sent (prepared on its turn, so a batch's prepared
copies do not wait in memory), then finished on the CPU pool the same way. The
page polls the tasks and moves finished results into history; workers never touch Streamlit.

The prompt's path, from the text box to Novita's JSON body (8 hops; each names the next function):
1. views/replace.py draws the Prompt box (`inputs.prompt_box`, its key in `inputs.FORMS`); the run
   button's on_click is `actions.start("replace")`.
2. `actions.start` reads it (`inputs.prompt`) into a `Task`, and `actions._run` calls `Run.start`.
3. `Run.start` queues `Run._begin` on the CPU pool (`workers.cpu().submit(owner, self._begin, task, …)`).
4. `Run._begin` prepares the photo and queues `Run._send` on the send pool.
5. `Run._send` calls `jobs.send(prepared, task.prompt, …)`.
6. `jobs.send` reserves the image, waits in the key's line and hands `engines.Job(data, prompt, …)` to the
   engine (`_submit` → `engine.submit`).
7. `QwenEdit.submit` (engines/qwen_edit.py) calls `novita.submit_edit(job.data, job.prompt, …)`.
8. `novita.submit_edit` checks the prompt (`_settings`: at most 500 characters) and writes the body
   (`_edit_body(image, edit_instruction(prompt), …)`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from services import engines, export, images, jobs, malloc, novita, recovery, workers
from services.budget import Account, Ledger
from services.errors import Note, note
from services.items import HistoryItem

log = logging.getLogger(__name__)
WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"


MASKED = (engines.OFFLINE, engines.CUTOUT, engines.COMPOSITE)  # every result they make rests on the subject mask


@dataclass(frozen=True)
class MadeFrom:
    """What a finished result resting on the subject mask was made from, so a touch-up can make it again:
    the prepared photo, and the image a redrawing engine made before the photo's subject was laid back over
    it (`scene`, without its decoded pixels; None for a result made here) with that engine's name."""

    prepared: images.PreparedImage
    scene: engines.ReplaceResult | None = None
    scene_by: str | None = None


def scope_of(owner: Hashable) -> str:
    """The scope of what is reused within one session only (a photo's cut subject): its owner's identity."""
    return str(id(owner))


@dataclass(eq=False)
class Task:
    """One photo × one prompt, how far it got, and how it ended (the error itself, not a sentence)."""

    source_name: str
    prompt: str
    data: bytes | None = field(default=None, repr=False)  # the uploaded bytes, until prepared
    prepared: images.PreparedImage | None = field(default=None, repr=False)
    status: str = WAITING
    stage: Note = field(default_factory=lambda: note("waiting_worker"))  # what it is doing now
    steps: list[Note] = field(default_factory=list)  # the steps done, for the run's status
    waiting: tuple[int, float] | None = None  # (place in line, about how many seconds) for the shared key
    error: BaseException | None = None
    item: HistoryItem | None = field(default=None, repr=False)
    reply: engines.ReplaceResult | None = field(default=None, repr=False)  # paid for, previews not made yet
    handle: engines.Handle | None = field(default=None, repr=False)  # the task Novita accepted, while in flight
    receipt: object = field(default=None, repr=False)  # its written-down receipt, until the result is kept
    collected: bool = False  # handed to history already
    released: bool = False  # done, but history no longer keeps its result (see Run.release)
    seconds: float | None = None  # how long it took, kept after its result is released
    started: float | None = None
    finished: float | None = None
    attempt: int = 0  # a retry starts a new attempt; work queued for an older one does nothing
    queued: bool = False  # handed to the workers for this attempt: never twice, or a photo is paid twice
    strokes: tuple = field(default=(), repr=False)  # touchup.Stroke: corrections to the subject mask
    made_from: MadeFrom | None = field(default=None, repr=False)  # once done with the mask, until collected

    @property
    def retryable(self) -> bool:
        """True when it failed and a retry can help."""
        return self.status == FAILED and jobs.retryable(self.error)

    @property
    def elapsed(self) -> float:
        """Seconds since its photo was sent (or its work began), to the end or to now."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def _progress(self, stage=None, step=None, waiting=None) -> None:
        """A `jobs` progress report: the stage, a step done, or the place in line."""
        if waiting is not None:
            self.waiting = waiting or None
        if step:
            self.steps.append(step)
        if stage:
            self.stage = stage


@dataclass(frozen=True)
class Spending:
    """What a run's sends spend: the key (never shown), the ledger, the session's account, the price."""

    api_key: str | None = field(repr=False)
    ledger: Ledger | None = None
    account: Account | None = None
    price: float = 0.0
    concurrency: int = 4


@dataclass(eq=False)
class Run:
    """The tasks of one run and what they share; `owner` names the session, for fairness between sessions."""

    tasks: list[Task]
    image_type: str
    engine: str
    owner_key: bool = False  # on the app owner's key: the session cap and the daily ceiling apply
    owner: Hashable = None
    keep: Callable[[HistoryItem], None] | None = field(default=None, repr=False)  # called in the worker
    lock: bool = False  # lay the photo's own subject back over Novita's new scene
    recipe: dict | None = field(default=None, repr=False)  # a background made here: colour, backdrop, framing…
    receipts: recovery.Receipts | None = field(default=None, repr=False)  # tasks in flight, written down
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
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

    def start(self, spending: Spending) -> None:
        """Queue every task not yet queued and return at once."""
        self.cancel.clear()
        with self._lock:
            queued = [(task, task.attempt) for task in self.tasks if task.status == WAITING and not task.queued]
            for task, _ in queued:
                task.queued, task.started = True, time.monotonic()
        for task, attempt in queued:
            if self.engine == engines.NOVITA:
                workers.cpu().submit(self._owner, self._begin, task, attempt, spending, limit=workers.cpu_share())
            else:  # prepared on its turn, not ahead: a batch's prepared copies would wait in memory
                task.stage = note("waiting_turn")
                workers.photos().submit(self._owner, self._make, task, attempt, spending)

    def retry_failed(self, spending: Spending) -> int:
        """Put the failed tasks a retry can help back in line and run them again; returns how many."""
        with self._lock:
            failed = [task for task in self.tasks if task.retryable]
            for task in failed:
                task.status, task.error, task.waiting, task.finished = WAITING, None, None, None
                task.attempt, task.queued = task.attempt + 1, False
                task.steps = []
        self.start(spending)
        return len(failed)

    def cancel_rest(self) -> None:
        """Stop every task not yet sent: those queued fail at once as cancelled, those in line for the key
        leave it within a moment; photos already with Novita finish."""
        self.cancel.set()
        with self._lock:
            for task in self.tasks:
                if task.status == WAITING:
                    self._fail_locked(task, jobs.Cancelled("cancelled_before_sent"))

    def collect(self) -> list[Task]:
        """Finished tasks not yet handed over (each is returned once), for the page to add to history."""
        with self._lock:
            ready = [task for task in self.tasks if task.status == DONE and not task.collected]
            for task in ready:
                task.collected = True
        return ready

    def release(self, held: Callable[[str], HistoryItem | None]) -> int:
        """Let go of results already handed over that history no longer holds (`held(item id)` is what it
        holds, or None), and hold the others as history does (without their full-size bytes when the store
        keeps them), so a run never holds more than history does; returns how many went. Their rows still say
        done."""
        released = 0
        with self._lock:
            for task in self.tasks:
                if task.collected and task.item is not None:
                    kept = held(task.item.id)
                    if kept is None:
                        task.seconds, task.item, task.released = task.item.seconds, None, True
                        released += 1
                    else:
                        task.item = kept
        return released

    def rows(self, describe: Callable[[BaseException], str]) -> list[export.Row]:
        """Every task as a line of the results ZIP's manifest, with its image while it is kept; `describe`
        turns a failure into its sentence (that is the Streamlit side's job)."""
        with self._lock:
            return [export.Row(t.source_name, t.prompt, self.image_type, self.engine, item=t.item,
                               error=None if t.error is None else describe(t.error),
                               seconds=t.seconds if t.released else None) for t in self.tasks]

    @property
    def _scope(self) -> str:
        """Whose run it is, for what may be reused within one session only (a photo's cut subject)."""
        return scope_of(self._owner)

    @property
    def _owner(self) -> Hashable:
        return self.owner if self.owner is not None else id(self)

    # --- the workers' side ------------------------------------------------------------------------------

    def _current(self, task: Task, attempt: int, status: str = WAITING) -> bool:
        """True while this attempt of the task is still the live one, in `status`."""
        return task.attempt == attempt and task.status == status

    def _begin(self, task: Task, attempt: int, spending: Spending) -> None:
        """CPU pool: prepare the photo, then queue its send to Novita."""
        if not self._current(task, attempt) or self.cancel.is_set():
            return
        try:
            self._prepare(task)
            workers.sends().submit(self._owner, self._send, task, attempt, spending, limit=spending.concurrency)
        except Exception as exc:  # one photo's failure never stops the others
            self._fail(task, attempt, exc)

    @staticmethod
    def _prepare(task: Task) -> None:
        if task.prepared is None:
            task.stage = note("preparing")
            task.prepared = images.prepare(task.data or b"", task.source_name)
        task.data = None  # the prepared copy is all that is needed from here on

    def _make(self, task: Task, attempt: int, spending: Spending) -> None:
        """Photo pool: prepare the photo and make it with an engine of this server; the previews go back to
        the CPU pool."""
        with self._lock:
            if not self._current(task, attempt) or self.cancel.is_set():
                return
            task.status = RUNNING
        try:
            task.started = time.monotonic()
            self._prepare(task)
            task.reply = jobs.send(task.prepared, task.prompt, self.image_type, engine=self.engine,
                                   progress=task._progress, recipe=self.recipe, scope=self._scope,
                                   strokes=task.strokes)
        except Exception as exc:  # one photo's failure never stops the others
            self._fail(task, attempt, exc)
            return
        workers.cpu().submit(self._owner, self._finish_safely, task, attempt, spending, limit=workers.cpu_share())

    def _send(self, task: Task, attempt: int, spending: Spending) -> None:
        """Send pool: reserve, wait in the key's line, call Novita; the previews go back to the CPU pool."""
        with self._lock:  # the one place that decides a task gets a slot: not once it was cancelled
            if not self._current(task, attempt) or self.cancel.is_set():
                return
            task.status = RUNNING
        try:
            if task.reply is None and task.handle is not None:  # accepted before: collect it, never pay again
                task.started = time.monotonic()
                task.reply = jobs.collect_again(task.handle, task.prepared, task.prompt, self.image_type,
                                                api_key=spending.api_key, progress=task._progress)
            elif task.reply is None:
                task.started = time.monotonic()  # its time at Novita and after, not its wait for a worker
                task.reply = jobs.send(task.prepared, task.prompt, self.image_type, engine=self.engine,
                                       api_key=spending.api_key, cost=spending.price, ledger=spending.ledger,
                                       account=spending.account, owner_key=self.owner_key, cancel=self.cancel,
                                       progress=task._progress,
                                       accepted=lambda handle: self._accepted(task, handle, spending))
        except Exception as exc:
            if not jobs.collectable(exc):  # else the accepted task is collected by a retry or a later start
                self._drop_receipt(task)
            self._fail(task, attempt, exc)
            return
        if self._laid_back(task):  # the subject lock looks at the photo and the scene at full size
            workers.photos().submit(self._owner, self._finish_safely, task, attempt, spending)
        else:
            workers.cpu().submit(self._owner, self._finish_safely, task, attempt, spending, limit=workers.cpu_share())

    def _laid_back(self, task: Task) -> bool:
        """Whether the photo's own subject is to be laid back over the scene a redrawing engine made."""
        return self.lock and task.handle is not None and engines.REGISTRY[task.handle.engine].redraws

    def _finish_safely(self, task: Task, attempt: int, spending: Spending) -> None:
        try:
            self._finish(task, attempt, spending)
        except Exception as exc:
            self._fail(task, attempt, exc)

    def _accepted(self, task: Task, handle: engines.Handle, spending: Spending) -> None:
        """Novita accepted the task: write its receipt down before anything else can fail."""
        task.handle = handle
        if self.receipts is not None:
            task.receipt = self.receipts.keep(handle, prompt=task.prompt, image_type=self.image_type,
                                              source_name=task.source_name, lock=self.lock,
                                              owner_key=self.owner_key, cost=spending.price, prepared=task.prepared)

    def _drop_receipt(self, task: Task) -> None:
        if self.receipts is not None and task.receipt is not None:
            self.receipts.drop(task.receipt)
        task.receipt = task.handle = None

    def _finish(self, task: Task, attempt: int, spending: Spending) -> None:
        task_id = task.handle.task_id if task.handle is not None else None
        lock = self._laid_back(task)
        item = jobs.finish(task.prepared, task.prepared.preview, task.prompt, self.image_type, task.reply,
                           engine=self.engine, source_name=task.source_name, cost=spending.price,
                           started=task.started, progress=task._progress, lock=lock,
                           item_id=recovery.item_id(task_id) if task_id else None, scope=self._scope,
                           strokes=task.strokes)
        made_from = None
        if self.engine in MASKED:
            made_from = MadeFrom(task.prepared)
        elif lock and any(getattr(notice, "kind", None) == "subject_laid_back" for notice in item.notices):
            made_from = MadeFrom(task.prepared, dataclasses.replace(task.reply, decoded=None, before=None),
                                 task.handle.engine)
        if self.keep is not None and task.attempt == attempt:
            self.keep(item)  # kept before the page hears of it: a tab closed meanwhile loses nothing
        self._drop_receipt(task)
        with self._lock:
            if task.attempt != attempt:
                return
            task.steps.append(note("done"))
            task.item, task.status, task.finished, task.waiting = item, DONE, time.monotonic(), None
            task.made_from = made_from
            # what made it is in the history item now (and in made_from, until collected): no second copy
            task.reply = task.prepared = task.data = None
        self._after_task()

    def _fail(self, task: Task, attempt: int, exc: Exception) -> None:
        if not isinstance(exc, jobs.EXPECTED):
            log.error("run: unexpected failure", exc_info=exc)
        with self._lock:
            if task.attempt == attempt and task.status in (WAITING, RUNNING):  # not one already cancelled
                self._fail_locked(task, exc)
        self._after_task()

    def _after_task(self) -> None:
        """Once the run's last task has ended, hand the memory its photos used back to the system."""
        if self.finished:
            malloc.trim()

    def _fail_locked(self, task: Task, exc: BaseException) -> None:
        """Mark a task failed; keep only what a retry needs: nothing when a retry cannot help, else its
        prepared photo (the upload itself only when it was never prepared) and a reply already paid for."""
        task.status, task.error, task.waiting, task.finished = FAILED, exc, None, time.monotonic()
        if not jobs.retryable(exc):
            task.data = task.prepared = task.reply = None
        elif task.prepared is not None:
            task.data = None

