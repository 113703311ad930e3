"""Process-wide bounded workers, fair between sessions.

Pools are made once per process: one for sends (requests that wait on Novita; its size is the
`SEND_WORKERS` setting), one for CPU work (preparing photos, previews; sized to the CPUs) and one for photos
made here (below). Each pool keeps one queue per owner (a browser session) and serves the owners in turn,
so a person's 50-photo batch does not make another person's single photo wait behind all of it.

The third bound is on memory rather than threads: the work on a photo at full size (its cut-out by the
subject model, the backdrop, a touch-up, the lock's second look) is done for one photo at a time in the
process. A run's photos made here, and its results whose subject is laid back, queue for `photos()`, a pool
of one thread, fair between sessions like the others, so they never hold a CPU thread while they wait; what
else works at full size (the Touch up editor opening on a photo no longer cut, a restart collecting a paid
result) takes `one_photo()`, the place that thread holds too, in the order it asked.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable

from services import config

log = logging.getLogger(__name__)


class FairPool:
    """A fixed number of daemon threads serving per-owner queues round-robin; an owner may be held to at
    most `limit` jobs at once (per `submit`)."""

    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, int(size))
        self._cond = threading.Condition()
        self._queues: dict[Hashable, deque[Callable[[], None]]] = {}
        self._turns: deque[Hashable] = deque()  # owners with queued work, next to be served first
        self._running: dict[Hashable, int] = {}
        self._limits: dict[Hashable, int] = {}
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(self.size)]
        for thread in self._threads:
            thread.start()

    def submit(self, owner: Hashable, job: Callable[..., None], *args, limit: int | None = None) -> None:
        """Queue `job(*args)` for `owner`; at most `limit` of this owner's jobs run at once (None: any number)."""
        with self._cond:
            self._queues.setdefault(owner, deque()).append(functools.partial(job, *args) if args else job)
            self._limits[owner] = limit or self.size
            if owner not in self._turns:
                self._turns.append(owner)
            self._cond.notify()

    def pending(self, owner: Hashable) -> int:
        """Jobs of `owner` queued or running."""
        with self._cond:
            return len(self._queues.get(owner, ())) + self._running.get(owner, 0)

    def _next(self) -> tuple[Hashable, Callable[[], None]] | None:
        """The first owner in turn that may run one more job, and its oldest job; that owner goes last."""
        for _ in range(len(self._turns)):
            owner = self._turns.popleft()
            queue = self._queues.get(owner)
            if not queue:
                self._queues.pop(owner, None)
                continue
            if self._running.get(owner, 0) >= self._limits.get(owner, self.size):
                self._turns.append(owner)
                continue
            job = queue.popleft()
            if queue:
                self._turns.append(owner)
            else:
                del self._queues[owner]
            self._running[owner] = self._running.get(owner, 0) + 1
            return owner, job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while (picked := self._next()) is None:
                    self._cond.wait()
            owner, job = picked
            try:
                job()
            except Exception:  # a job reports its own failures; this only keeps the worker alive
                log.exception("worker: a job failed outside its own error handling")
            finally:
                with self._cond:
                    self._running[owner] -= 1
                    if not self._running[owner]:
                        del self._running[owner]
                        if owner not in self._queues:
                            self._limits.pop(owner, None)  # hold no reference to a session that is done
                    self._cond.notify_all()


class FairGate:
    """A re-entrant lock handed to its waiters in the order they asked (a plain lock lets the thread that
    let go take it straight back, so a person waiting on it could wait for a whole batch)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._line: deque[int] = deque()
        self._holder: int | None = None
        self._depth = 0

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._holder == me:
                self._depth += 1
                return
            self._line.append(me)
            while self._holder is not None or self._line[0] != me:
                self._cond.wait()
            self._line.popleft()
            self._holder, self._depth = me, 1

    def __exit__(self, *exc_info) -> None:
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._holder = None
                self._cond.notify_all()

    def waiting(self) -> int:
        """Threads in line for it now."""
        with self._cond:
            return len(self._line)


# One pass of the subject model holds about 200 MB and a 3 MP photo's backdrop about 100 MB more, both for a
# second or two. On the smallest Community Cloud container (690 MB) two such photos at once, beside every
# session's history, go over, and a container over its limit is stopped; two at once gain little on its
# one or two CPUs. Re-entrant: the engine holds it around a whole photo, the cut-out inside takes it again.
_one_photo = FairGate()


def one_photo() -> FairGate:
    """The process's one place for full-size work on a photo, to hold with `with` (`bench.memory` measures
    why)."""
    return _one_photo


def cpu_count() -> int:
    """CPUs this process may use (a Community Cloud box may offer fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_lock = threading.Lock()
_pools: dict[str, FairPool] = {}


def _pool(name: str, size: Callable[[], int]) -> FairPool:
    with _lock:
        if name not in _pools:
            _pools[name] = FairPool(size(), name)
        return _pools[name]


def sends() -> FairPool:
    """The process's pool for requests to Novita (`SEND_WORKERS` threads)."""
    return _pool("send", config.send_workers)


def cpu() -> FairPool:
    """The process's pool for CPU work: a thread per CPU and one spare, which no single session may take
    (see `cpu_share`), so a newcomer's photo is prepared at once instead of after a batch's current photos."""
    return _pool("cpu", lambda: cpu_count() + 1)


def photos() -> FairPool:
    """The process's pool for photos made here at full size: one thread (see `one_photo`), the sessions
    served in turn, so a newcomer's photo waits for at most the one being made."""
    return _pool("photo", lambda: 1)


def cpu_share() -> int:
    """CPU jobs one session may run at once: all CPUs but one (at least one), so another session's photo
    finds a thread at once and a CPU not already shared with the batch."""
    return max(1, cpu_count() - 1)
