"""The one small interface every engine implements, and what passes through it.

An engine is driven in two steps. `submit` starts the work and returns a `Handle`, the receipt: for a remote
engine this is the one moment that may cost money (the POST), and the handle is what the run engine keeps so
a restart collects the result instead of paying for it again. `collect` turns a handle into the image,
reporting progress on the way; a local engine does its work in `submit` and its handle already holds the
result. The run engine (`services.jobs`, `services.runs`) drives every engine alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from services.novita import ReplaceResult, TaskState

NOVITA = "novita"
OFFLINE = "offline"
CUTOUT = "cutout"
COMPOSITE = "composite"


@dataclass(frozen=True)
class Job:
    """What an engine is asked for: a prepared photo's bytes, the person's prompt, the output type."""

    data: bytes = field(repr=False)
    prompt: str
    image_type: str
    api_key: str | None = field(default=None, repr=False)
    recipe: dict | None = field(default=None, repr=False)  # a background made here: colour, backdrop, framing…
    scope: str = ""  # whose run it is: a cut subject is reused within one session only
    strokes: tuple = field(default=(), repr=False)  # touchup.Stroke: the person's corrections to the subject mask


@dataclass(frozen=True)
class Handle:
    """The receipt of a submitted job: the engine's name, and either its remote task id or its result."""

    engine: str
    task_id: str | None = None
    result: ReplaceResult | None = field(default=None, repr=False)
    submitted_at: float = field(default_factory=time.monotonic)


Progress = Callable[[TaskState], None]


class Engine(Protocol):
    """`name` is its registry key; `family` what history and the pages call it (Novita, offline, cut-out);
    `remote` says the photo leaves the server on a paid key, so the key's line and the budget apply;
    `redraws` that it paints the whole picture anew, subject included (so the subject may be laid back)."""

    name: str
    family: str
    remote: bool
    redraws: bool

    def submit(self, job: Job) -> Handle: ...

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> ReplaceResult: ...


class MadeAtOnce:
    """For an engine that does its work in `submit`: its handle already holds the result."""

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> ReplaceResult:
        return handle.result


def timed(engine: str, make: Callable[[], bytes], image_type: str) -> Handle:
    """A local engine's handle: `make` run here, now, with its time."""
    started = time.monotonic()
    data = make()
    return Handle(engine, result=ReplaceResult(data, image_type, time.monotonic() - started))
