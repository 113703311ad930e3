"""One background replacement running off the script thread, so the page can show elapsed time and a
rerun (a second click, a page switch) neither loses the result nor sends a second paid call.

The worker thread only does I/O and image work and writes to its own `Job`; it never calls Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from services import engines, images, novita
from services.history import HistoryItem
from services.images import PreparedImage
from services.quota import Limiter, bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when


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

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started


def start(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str, *, engine: str,
          source_name: str, api_key: str | None = None, cost: float = 0.0,
          limiter: Limiter | None = None) -> Job:
    """Start one replacement in a daemon thread and return its Job at once."""
    job = Job(prompt=prompt, image_type=image_type, engine=engine, source_name=source_name)
    args = (job, prepared, before_preview, api_key, cost, limiter)
    threading.Thread(target=_run, args=args, name="replace-background", daemon=True).start()
    return job


def _wait_for_slot(job: Job, limiter: Limiter, bucket: str) -> None:
    job.stage = "Waiting for a free slot on the shared key"

    def on_wait(place: int, seconds: float) -> None:
        job.waiting = (place, seconds)

    granted = limiter.acquire(bucket, cancel=job.cancel, on_wait=on_wait)
    job.waiting = None
    if not granted:
        raise Cancelled("Cancelled while waiting; nothing was sent to Novita.")


def _run(job: Job, prepared: PreparedImage, before_preview: bytes, api_key: str | None, cost: float,
         limiter: Limiter | None) -> None:
    bucket = None
    try:
        width, height = prepared.size
        job.steps.append(f"Prepared the photo: {width} × {height} {prepared.format.upper()}")
        if job.engine == engines.NOVITA:
            if limiter is not None and api_key:
                bucket = bucket_for(api_key)
                _wait_for_slot(job, limiter, bucket)
            job.stage = "Sending the photo to Novita and waiting for the new background"
        else:
            job.stage = "Cutting out the subject and painting a backdrop"
        result = engines.replace_background(prepared.data, job.prompt, job.image_type, engine=job.engine,
                                            api_key=api_key)
        job.steps.append(f"{engines.LABELS[job.engine]} answered in {result.seconds:.1f} s")
        job.stage = "Making the previews"
        job.item = HistoryItem(
            prompt=job.prompt, image_type=job.image_type, engine=job.engine, seconds=job.elapsed,
            source_name=job.source_name, result=result.image, before_preview=before_preview,
            after_preview=images.preview(result.image), thumbnail=images.thumbnail(result.image),
            size=prepared.size, cost=cost if job.engine == engines.NOVITA else 0.0,
            notices=prepared.notices + (("Novita sent another format; it was converted here.",)
                                        if result.converted else ()),
        )
        job.steps.append("Done")
    except novita.RateLimitError as exc:
        if limiter is not None and bucket is not None:  # every session holds off, not only this one
            limiter.penalize(bucket, exc.retry_after or RATE_LIMIT_BACKOFF)
        job.error = exc
    except Exception as exc:  # every failure goes back to the page, which decides what the person sees
        if not isinstance(exc, (images.ImageError, novita.NovitaError, Cancelled, ValueError)):
            log.exception("replace-background: unexpected failure")
        job.error = exc
    finally:
        job.done.set()
