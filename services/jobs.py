"""The steps of one replacement, run by a worker of `services.runs`: send (reserve the image, wait for a
slot on the key's line, call the engine) and finish (previews, the history item). No Streamlit here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from services import config, engines, images, novita
from services.budget import Account, BudgetExceeded, Ledger
from services.history import HistoryItem
from services.images import PreparedImage
from services.quota import Limiter, Suspended, bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when
RATE_LIMIT_HOLD_MAX = 60.0  # a 429 asking for longer holds everyone this long at most
RATE_LIMIT_RETURNS = 1  # times a photo goes back in line after a 429 before it fails with a Try again
Progress = Callable[..., None]


class Cancelled(Exception):
    """The person cancelled while waiting for a slot; nothing was sent."""


EXPECTED = (images.ImageError, novita.NovitaError, Cancelled, Suspended, BudgetExceeded)  # known sentences


def retryable(error: BaseException) -> bool:
    """Whether the same run, sent again as it is, may succeed: never for a refused photo, a paused key or a
    budget that is used up."""
    if isinstance(error, novita.NovitaError):
        return error.retryable
    return not isinstance(error, EXPECTED)


def certainly_not_processed(error: BaseException) -> bool:
    """True when Novita cannot have made (or charged for) the image: nothing was sent (cancelled, paused,
    refused or unresolvable connection), the call was refused before any work (429, an owner-side refusal,
    another 4xx, a 503 that came back quickly), or the app's settings stopped it. A slow 503 may be a gateway
    that gave up on a generation still running, so it counts as spent."""
    if isinstance(error, (Cancelled, Suspended, novita.ConfigurationError, BudgetExceeded)):
        return True
    if isinstance(error, novita.APIConnectionError):
        return not error.sent
    if getattr(error, "actor", None) == "owner":
        return True
    status = getattr(error, "status", None)
    if not isinstance(error, novita.APIStatusError) or status is None:
        return False
    if status == 503:
        return error.seconds is not None and error.seconds <= novita.SERVICE_UNAVAILABLE_RETRY_WITHIN
    return 400 <= status < 500


def make_item(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str, *, engine: str,
              source_name: str, api_key: str | None = None, cost: float = 0.0, ledger: Ledger | None = None,
              account: Account | None = None, owner_key: bool = False, cancel: threading.Event | None = None,
              progress: Progress | None = None) -> HistoryItem:
    """Run one replacement to the end in the calling thread: send, then make the previews."""
    started = time.monotonic()
    result = send(prepared, prompt, image_type, engine=engine, api_key=api_key, cost=cost, ledger=ledger,
                  account=account, owner_key=owner_key, cancel=cancel, progress=progress)
    return finish(prepared, before_preview, prompt, image_type, result, engine=engine, source_name=source_name,
                  cost=cost, started=started, progress=progress)


def send(prepared: PreparedImage, prompt: str, image_type: str, *, engine: str, api_key: str | None = None,
         cost: float = 0.0, ledger: Ledger | None = None, account: Account | None = None, owner_key: bool = False,
         cancel: threading.Event | None = None, progress: Progress | None = None) -> engines.ReplaceResult:
    """Reserve the image on the ledger, wait for a slot in the key's line, call the engine; its reply comes
    back checked and decoded. A 429 penalises the key and puts the photo back in line (nothing below
    retries it), so every request sent was granted by the limiter."""
    report = progress or _silent
    width, height = prepared.size
    report(step=f"Prepared the photo: {width} × {height} {prepared.format.upper()}")
    if engine != engines.NOVITA or ledger is None or not api_key:
        return _call(prepared, prompt, image_type, engine, api_key, report)
    bucket = bucket_for(api_key)
    for returns in range(RATE_LIMIT_RETURNS + 1):
        _raise_if_paused(ledger.limiter, bucket)  # before waiting in line for a slot that could not be used
        reservation = ledger.reserve(account, owner_key=owner_key, cost=cost)
        try:
            report(stage="Waiting for a free slot on the shared key")
            granted = ledger.limiter.acquire(bucket, cancel=cancel,
                                             on_wait=lambda place, seconds: report(waiting=(place, seconds)))
            report(waiting=False)
            if not granted:
                raise Cancelled("Cancelled while waiting; nothing was sent to Novita.")
            _raise_if_paused(ledger.limiter, bucket)  # another session's refusal may have come in meanwhile
            try:
                result = _call(prepared, prompt, image_type, engine, api_key, report)
            except novita.APIStatusError as exc:
                if not isinstance(exc, novita.RateLimitError):
                    _refused(exc, prepared, ledger.limiter if owner_key else None, bucket)
                raise
        except novita.RateLimitError as exc:
            reservation.release()
            wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_BACKOFF
            ledger.limiter.penalize(bucket, min(wait, RATE_LIMIT_HOLD_MAX))  # every session holds off
            if returns == RATE_LIMIT_RETURNS:
                raise
            report(step="Novita was busy; back in line for the shared key")
            continue
        except BaseException as exc:
            if certainly_not_processed(exc):
                reservation.release()
            else:
                reservation.spend()  # a timeout or a broken reply: Novita may have made it
            raise
        reservation.spend()
        return result
    raise AssertionError("unreachable")  # the loop returns or raises


def _call(prepared: PreparedImage, prompt: str, image_type: str, engine: str, api_key: str | None,
          report: Progress) -> engines.ReplaceResult:
    stages = {engines.NOVITA: "Sending the photo to Novita and waiting for the new background",
              engines.OFFLINE: "Cutting out the subject and painting a backdrop"}
    report(stage=stages.get(engine, "Cutting out the subject"))
    result = engines.replace_background(prepared.data, prompt, image_type, engine=engine, api_key=api_key)
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
