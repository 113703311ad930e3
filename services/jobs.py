"""One background replacement running off the script thread, so the page can show elapsed time and a
rerun (a second click, a page switch) neither loses the result nor sends a second paid call.

The worker thread only does I/O and image work and writes to its own `Job`; it never calls Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services import engines, images, novita
from services.history import HistoryItem
from services.images import PreparedImage
from services.quota import Limiter, bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when
RATE_LIMIT_HOLD_MAX = 60.0  # a 429 asking for longer holds everyone this long at most; the person retries
UNEXPECTED = ("Something went wrong on our side while making this image. Press Try again; if it keeps "
              "happening, try another photo.")
Progress = Callable[..., None]


class Cancelled(Exception):
    """The person cancelled while waiting for a slot; nothing was sent."""


@dataclass
class Job:
    """A run in flight: its request, the steps passed so far, and its outcome once `done` is set."""

    prompt: str
    image_type: str
    engine: str
    source_name: str
    stage: str = "Preparing the photo"
    steps: list[str] = field(default_factory=list)
    waiting: tuple[int, float] | None = None  # (place in line, estimated seconds) while queued for the key
    item: HistoryItem | None = None
    error: Exception | None = None
    started: float = field(default_factory=time.monotonic)
    owner_key: bool = False  # the app owner's key, not one the person pasted: refusals are the owner's to fix
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    finished: float | None = None

    @property
    def elapsed(self) -> float:
        """Seconds the run took, or has taken so far."""
        return (self.finished or time.monotonic()) - self.started


def start(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str, *, engine: str,
          source_name: str, api_key: str | None = None, cost: float = 0.0,
          limiter: Limiter | None = None, owner_key: bool = False) -> Job:
    """Start one replacement in a daemon thread and return its Job at once."""
    job = Job(prompt=prompt, image_type=image_type, engine=engine, source_name=source_name, owner_key=owner_key)
    args = (job, prepared, before_preview, api_key, cost, limiter)
    threading.Thread(target=_run, args=args, name="replace-background", daemon=True).start()
    return job


OWNER_KEY_MESSAGES = {
    novita.InsufficientBalanceError: ("The demo's Novita credits are used up. Tell the owner of this app, or "
                                      "paste your own key in the sidebar; the offline studio still works.",
                                      "the account has no balance left: top it up at novita.ai"),
    novita.AuthenticationError: ("The demo's Novita key is not valid. Tell the owner of this app, or paste "
                                 "your own key in the sidebar; the offline studio still works.",
                                 "the key was refused: set a valid NOVITA_API_KEY in the app's secrets"),
}


def failure_message(error: BaseException, *, owner_key: bool = False) -> tuple[str, bool]:
    """(sentence for the person, whether a one-click retry makes sense) for any failure of a run. When the
    app owner's key was refused, people are told to tell the owner, and the log tells the owner what to do."""
    owner = next((m for cls, m in OWNER_KEY_MESSAGES.items() if isinstance(error, cls)), None)
    if owner and owner_key:
        log.warning("Novita refused the app owner's key (%s): %s.", getattr(error, "reason", None), owner[1])
        return owner[0], False
    if isinstance(error, novita.NovitaError):
        return error.user_message, error.retryable
    if isinstance(error, (images.ImageError, Cancelled)):
        return str(error), False
    return UNEXPECTED, True


def make_item(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str, *, engine: str,
              source_name: str, api_key: str | None = None, cost: float = 0.0, limiter: Limiter | None = None,
              cancel: threading.Event | None = None, progress: Progress | None = None) -> HistoryItem:
    """Run one replacement to the end, in the calling thread: wait for a slot, call the engine, make the
    previews. `progress` hears (stage, step done, place in line); no Streamlit is touched here."""
    started = time.monotonic()
    result = send(prepared, prompt, image_type, engine=engine, api_key=api_key, limiter=limiter, cancel=cancel,
                  progress=progress)
    return finish(prepared, before_preview, prompt, image_type, result, engine=engine, source_name=source_name,
                  cost=cost, started=started, progress=progress)


def send(prepared: PreparedImage, prompt: str, image_type: str, *, engine: str, api_key: str | None = None,
         limiter: Limiter | None = None, cancel: threading.Event | None = None,
         progress: Progress | None = None) -> engines.ReplaceResult:
    """The first half of `make_item`: wait for a slot on the shared key, then call the engine; its reply
    comes back checked and decoded."""
    report = progress or _silent
    width, height = prepared.size
    report(step=f"Prepared the photo: {width} × {height} {prepared.format.upper()}")
    bucket = bucket_for(api_key) if engine == engines.NOVITA and api_key and limiter is not None else None
    if bucket is not None:
        report(stage="Waiting for a free slot on the shared key")
        try:
            granted = limiter.acquire(bucket, cancel=cancel,
                                      on_wait=lambda place, seconds: report(waiting=(place, seconds)))
        except Exception as exc:  # a limiter store that is down must not stop the demo; Novita still guards
            log.warning("rate limiter unavailable (%s); sending without waiting", type(exc).__name__)
            granted, bucket = True, None
        report(waiting=False)
        if not granted:
            raise Cancelled("Cancelled while waiting; nothing was sent to Novita.")
    report(stage="Sending the photo to Novita and waiting for the new background" if engine == engines.NOVITA
           else "Cutting out the subject and painting a backdrop")
    try:
        result = engines.replace_background(prepared.data, prompt, image_type, engine=engine, api_key=api_key)
    except novita.RateLimitError as exc:
        if bucket is not None:  # every session holds off, not only this one
            wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_BACKOFF
            limiter.penalize(bucket, min(wait, RATE_LIMIT_HOLD_MAX))
        raise
    report(step=f"{engines.LABELS[engine]} answered in {result.seconds:.1f} s")
    return result


def finish(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str,
           result: engines.ReplaceResult, *, engine: str, source_name: str, cost: float = 0.0,
           started: float | None = None, progress: Progress | None = None) -> HistoryItem:
    """The second half of `make_item`: the result's previews, and the history item that holds it all."""
    (progress or _silent)(stage="Making the previews")
    converted = ("Novita sent another format; it was converted here.",) if result.converted else ()
    after_preview, thumbnail = images.previews(result.decoded or images.open_image(result.image))
    seconds = time.monotonic() - started if started is not None else result.seconds
    return HistoryItem(
        prompt=prompt, image_type=image_type, engine=engine, seconds=seconds,
        source_name=source_name, result=result.image, before_preview=before_preview,
        after_preview=after_preview, thumbnail=thumbnail,
        size=prepared.size, cost=cost if engine == engines.NOVITA else 0.0, notices=prepared.notices + converted,
    )


def _silent(stage=None, step=None, waiting=None) -> None:
    """A `progress` that tells no one."""


def _run(job: Job, prepared: PreparedImage, before_preview: bytes, api_key: str | None, cost: float,
         limiter: Limiter | None) -> None:
    def progress(stage=None, step=None, waiting=None):
        if waiting is not None:
            job.waiting = waiting or None
        if step:
            job.steps.append(step)
        if stage:
            job.stage = stage

    try:
        job.item = make_item(prepared, before_preview, job.prompt, job.image_type, engine=job.engine,
                             source_name=job.source_name, api_key=api_key, cost=cost, limiter=limiter,
                             cancel=job.cancel, progress=progress)
        job.steps.append("Done")
    except Exception as exc:  # every failure goes back to the page, which decides what the person sees
        if not isinstance(exc, (images.ImageError, novita.NovitaError, Cancelled)):
            log.exception("replace-background: unexpected failure")
        job.error = exc
    finally:
        job.finished = time.monotonic()
        job.done.set()
