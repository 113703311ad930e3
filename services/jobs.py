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
from services import config
from services.quota import Limiter, Suspended, bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when
RATE_LIMIT_HOLD_MAX = 60.0  # a 429 asking for longer holds everyone this long at most; the person retries
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


EXPECTED = (images.ImageError, novita.NovitaError, Cancelled, Suspended)  # failures with a known sentence


def retryable(error: BaseException) -> bool:
    """Whether the same run, sent again as it is, may succeed: never for a refused photo or a paused key."""
    if isinstance(error, novita.NovitaError):
        return error.retryable
    return not isinstance(error, EXPECTED)


def make_item(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str, *, engine: str,
              source_name: str, api_key: str | None = None, cost: float = 0.0, limiter: Limiter | None = None,
              cancel: threading.Event | None = None, progress: Progress | None = None,
              owner_key: bool = False) -> HistoryItem:
    """Run one replacement to the end, in the calling thread: wait for a slot, call the engine, make the
    previews. `progress` hears (stage, step done, place in line); no Streamlit is touched here."""
    started = time.monotonic()
    result = send(prepared, prompt, image_type, engine=engine, api_key=api_key, limiter=limiter, cancel=cancel,
                  progress=progress, owner_key=owner_key)
    return finish(prepared, before_preview, prompt, image_type, result, engine=engine, source_name=source_name,
                  cost=cost, started=started, progress=progress)


def send(prepared: PreparedImage, prompt: str, image_type: str, *, engine: str, api_key: str | None = None,
         limiter: Limiter | None = None, cancel: threading.Event | None = None,
         progress: Progress | None = None, owner_key: bool = False) -> engines.ReplaceResult:
    """The first half of `make_item`: wait for a slot on the shared key, then call the engine; its reply
    comes back checked and decoded. Nothing is sent on a key paused after an owner-side refusal."""
    report = progress or _silent
    width, height = prepared.size
    report(step=f"Prepared the photo: {width} × {height} {prepared.format.upper()}")
    bucket = bucket_for(api_key) if engine == engines.NOVITA and api_key and limiter is not None else None
    if bucket is not None:
        _raise_if_paused(limiter, bucket)  # before waiting in line for a slot that could not be used
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
        if bucket is not None:
            _raise_if_paused(limiter, bucket)  # another session's refusal may have come in while this one waited
    stages = {engines.NOVITA: "Sending the photo to Novita and waiting for the new background",
              engines.OFFLINE: "Cutting out the subject and painting a backdrop"}
    report(stage=stages.get(engine, "Cutting out the subject"))
    try:
        result = engines.replace_background(prepared.data, prompt, image_type, engine=engine, api_key=api_key)
    except novita.RateLimitError as exc:
        if bucket is not None:  # every session holds off, not only this one
            wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_BACKOFF
            limiter.penalize(bucket, min(wait, RATE_LIMIT_HOLD_MAX))
        raise
    except novita.APIStatusError as exc:
        _refused(exc, prepared, limiter if owner_key else None, bucket)
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


def _raise_if_paused(limiter: Limiter, bucket: str) -> None:
    paused = limiter.suspended(bucket)
    if paused is not None:
        raise paused


def _refused(error: novita.APIStatusError, prepared: PreparedImage, limiter: Limiter | None,
             bucket: str | None) -> None:
    """Tell the owner, in the log, what a refusal asks of them; pause the owner's key when sending on it
    again cannot work until they act. `limiter` is None on a key the person pasted: theirs to fix."""
    if error.kind in ("photo_limits", "photo_format"):
        log.error("Novita refused a prepared photo (%s, %s × %s, %d bytes %s): %s; a fault of this app's "
                  "preparation", error.reason or error.status, *prepared.size, len(prepared.data),
                  prepared.format, error.fix)
    elif error.actor == novita.OWNER and limiter is not None:
        if error.stops_key and bucket is not None:
            seconds = config.owner_pause_seconds()
            limiter.suspend(bucket, seconds, error.kind)
            log.warning("Novita refused the app owner's key (%s): %s. Nothing is sent on it for %.0f s.",
                        error.reason or error.status, error.fix, seconds)
        else:
            log.warning("Novita refused a request on the app owner's key (%s): %s.", error.reason or error.status,
                        error.fix)


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
                             cancel=job.cancel, progress=progress, owner_key=job.owner_key)
        job.steps.append("Done")
    except Exception as exc:  # every failure goes back to the page, which decides what the person sees
        if not isinstance(exc, EXPECTED):
            log.exception("replace-background: unexpected failure")
        job.error = exc
    finally:
        job.finished = time.monotonic()
        job.done.set()
