"""The steps of one replacement, run by a worker of `services.runs`: send (reserve the image, wait for a
slot on the key's line, call the engine) and finish (previews, the history item). Progress is reported as
notes (a kind and its numbers) that `components.messages` words. No Streamlit here.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

from PIL import Image

from services import config, engines, images, novita, previews, subject_lock, touchup, workers
from services.budget import Account, BudgetExceeded, Ledger
from services.errors import Note, Refusal, note
from services.images import PreparedImage
from services.items import HistoryItem
from services.quota import Limiter, Suspended, bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when
RATE_LIMIT_HOLD_MAX = 60.0  # a 429 asking for longer holds everyone this long at most
RATE_LIMIT_RETURNS = 1  # times a photo goes back in line after a 429 before it fails with a Try again
Progress = Callable[..., None]


class Cancelled(Refusal):
    """The person cancelled before the photo was sent: `kind` cancelled_in_line (while waiting for a slot on
    the key) or cancelled_before_sent (still queued); nothing was sent, so a retry may send it."""

    kind = "cancelled_before_sent"
    retryable = True


EXPECTED = (Refusal, novita.NovitaError, Suspended, BudgetExceeded)  # failures with their own sentence


def retryable(error: BaseException | None) -> bool:
    """The one answer to "may Try again (or Retry failed) help?": the same task, sent again as it is, may
    succeed. Yes for a cancelled task (nothing was sent) and for an unexpected failure; for a Novita failure,
    what its class says (a 429, a 5xx or a broken connection yes; a refusal no); never for a refused photo,
    a paused key or a budget that is used up."""
    if error is None:
        return False
    if isinstance(error, (Suspended, BudgetExceeded)):
        return False
    return getattr(error, "retryable", True)


def certainly_not_processed(error: BaseException) -> bool:
    """True when Novita cannot have made (or charged for) the image: nothing was sent (cancelled, paused,
    refused or unresolvable connection), the call was refused before any work (429, an owner-side refusal,
    another 4xx, a 503 that came back quickly), or the app's settings stopped it. A slow 503 may be a gateway
    that gave up on a generation still running, so it counts as spent."""
    if isinstance(error, (Cancelled, Suspended, novita.ConfigurationError, novita.PromptTooLongError, BudgetExceeded)):
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
              progress: Progress | None = None, lock: bool = False) -> HistoryItem:
    """Run one replacement to the end in the calling thread: send, then make the previews."""
    started = time.monotonic()
    result = send(prepared, prompt, image_type, engine=engine, api_key=api_key, cost=cost, ledger=ledger,
                  account=account, owner_key=owner_key, cancel=cancel, progress=progress)
    return finish(prepared, before_preview, prompt, image_type, result, engine=engine, source_name=source_name,
                  cost=cost, started=started, progress=progress, lock=lock and engines.redraws(engine))


Accepted = Callable[[engines.Handle], None]


def send(prepared: PreparedImage, prompt: str, image_type: str, *, engine: str, api_key: str | None = None,
         cost: float = 0.0, ledger: Ledger | None = None, account: Account | None = None, owner_key: bool = False,
         cancel: threading.Event | None = None, progress: Progress | None = None,
         accepted: Accepted | None = None, recipe: dict | None = None, scope: str = "",
         strokes: tuple = ()) -> engines.ReplaceResult:
    """Reserve the image on the ledger, wait for a slot in the key's line, submit to the engine, then collect
    its result (checked and decoded). The reservation is spent the moment the engine accepts the job (a task
    id, or a synchronous image), and `accepted(handle)` is told of a remote task before anything else can
    fail, so its id is kept. A 429 penalises the key and puts the photo back in line (nothing below retries
    it), so every request sent was granted by the limiter."""
    report = progress or _silent
    width, height = prepared.size
    report(step=note("prepared", width=width, height=height, format=prepared.format))
    try:
        chosen = engines.engine_for(engine)
    except config.ConfigError as exc:
        raise novita.ConfigurationError(str(exc)) from None
    job = engines.Job(prepared.data, prompt, image_type, api_key, recipe, scope, strokes)
    if not chosen.remote:
        with workers.one_photo():  # made here at full size: one photo at a time (memory, not CPUs, is short)
            return _collect(chosen, _submit(chosen, job, report), job, report, accepted)
    if ledger is None or not api_key:
        return _collect(chosen, _submit(chosen, job, report), job, report, accepted)
    bucket = bucket_for(api_key)
    for returns in range(RATE_LIMIT_RETURNS + 1):
        _raise_if_paused(ledger.limiter, bucket)  # before waiting in line for a slot that could not be used
        reservation = ledger.reserve(account, owner_key=owner_key, cost=cost)
        try:
            report(stage=note("waiting_slot"))
            granted = ledger.limiter.acquire(bucket, cancel=cancel,
                                             on_wait=lambda place, seconds: report(waiting=(place, seconds)))
            report(waiting=False)
            if not granted:
                raise Cancelled("cancelled_in_line")
            _raise_if_paused(ledger.limiter, bucket)  # another session's refusal may have come in meanwhile
            try:
                handle = _submit(chosen, job, report)
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
            report(step=note("back_in_line"))
            continue
        except BaseException as exc:
            if certainly_not_processed(exc):
                reservation.release()
            else:
                reservation.spend()  # a timeout or a broken reply: Novita may have made it
            raise
        # Accepted: one image against the owner's ceilings. A task that later ends FAILED still counts:
        # Novita says failed generations of some models are not charged, but not of this one, and the
        # ceilings exist to bound what the owner may be billed, so the ledger errs on the side of counting.
        reservation.spend()
        return _collect(chosen, handle, job, report, accepted)
    raise AssertionError("unreachable")  # the loop returns or raises


def collect_again(handle: engines.Handle, prepared: PreparedImage, prompt: str, image_type: str, *,
                  api_key: str | None = None, progress: Progress | None = None) -> engines.ReplaceResult:
    """Collect a task Novita already accepted (a retry after its wait ran out or its link died): no POST, no
    reservation, nothing paid again; the wait starts anew."""
    report = progress or _silent
    report(step=note("collecting_again"))
    job = engines.Job(prepared.data, prompt, image_type, api_key)
    fresh = engines.Handle(handle.engine, task_id=handle.task_id)  # a new NOVITA_TIMEOUT from now
    return _collect(engines.REGISTRY[handle.engine], fresh, job, report, None)


def collectable(error: BaseException) -> bool:
    """Whether a task Novita accepted may still give its image after this failure to collect it: its wait ran
    out, its link died, or a read of it broke. Not after it ended as failed or named a link not fetched."""
    if isinstance(error, (novita.TaskFailedError, novita.UntrustedLinkError)):
        return False
    return isinstance(error, (novita.APIConnectionError, novita.ServerError, novita.LinkExpiredError,
                              novita.InvalidResponseError))


def _submit(engine: engines.Engine, job: engines.Job, report: Progress) -> engines.Handle:
    report(stage=note("sending", family=engine.family))
    return engine.submit(job)


def _collect(engine: engines.Engine, handle: engines.Handle, job: engines.Job, report: Progress,
             accepted: Accepted | None) -> engines.ReplaceResult:
    if handle.task_id is not None:
        report(step=note("accepted"))
        if accepted is not None:
            accepted(handle)
    result = engine.collect(handle, job, progress=lambda state: report(stage=novita_stage(state)))
    report(step=note("answered", family=engine.family, seconds=result.seconds))
    return result


def novita_stage(state: novita.TaskState) -> Note:
    """The run's stage while Novita works on a task: queued, or making it (how far, and about how long left,
    while it is processing)."""
    if state.status == "QUEUED":
        return note("queued")
    if state.status != "PROCESSING":
        return note("making")
    return note("making", progress=state.progress, eta=state.eta)


def finish(prepared: PreparedImage, before_preview: bytes, prompt: str, image_type: str,
           result: engines.ReplaceResult, *, engine: str, source_name: str, cost: float = 0.0,
           started: float | None = None, progress: Progress | None = None, lock: bool = False,
           item_id: str | None = None, scope: str = "", strokes: tuple = ()) -> HistoryItem:
    """The second half of `make_item`: the result fitted to the photo (and, with `lock`, the photo's own
    subject laid back: the caller asks it only of an engine that redraws), its previews, and the history
    item that holds it all."""
    report = progress or _silent
    decoded, real = result.decoded, _size_of(result.image)
    if decoded is None or (decoded.size != real and (lock or real != prepared.size)):
        decoded = images.open_image(result.image)  # the checked decode may be preview-sized: these need it whole
    notices: list[Note] = []
    changed = False
    if real != prepared.size and engine == engines.NOVITA:  # a frame made here has its own size on purpose
        report(stage=note("fitting"))
        if decoded.size[0] * decoded.size[1] < prepared.size[0] * prepared.size[1]:
            notices.append(note("enlarged", width=decoded.size[0], height=decoded.size[1],
                                photo_width=prepared.size[0], photo_height=prepared.size[1]))
        decoded, changed = subject_lock.fit_to(decoded, prepared.size), True
    if lock:
        report(stage=note("laying_back"))
        with workers.one_photo():  # the model looks at the photo and at the scene: full-size work
            locked = subject_lock.lay_subject_back(images.open_image(prepared.data), decoded,
                                                   touchup.layers(prepared.data, scope, strokes))  # once per photo
        if locked.locked:
            decoded, changed = locked.image, True
            notices.append(note("subject_laid_back"))
        else:
            notices.append(note("subject_moved"))
    if result.converted and not changed:
        notices.append(note("converted"))
    notices.extend(result.notices)
    if result.before is not None:  # the photo placed in the result's own frame, so the slider lines up
        before_preview = previews.previews(result.before)[0]
    data = images.encode(decoded, image_type) if changed or result.image_type != image_type else result.image
    report(stage=note("previews"))
    after_preview, thumbnail = previews.previews(decoded)
    seconds = time.monotonic() - started if started is not None else result.seconds
    extra = {"id": item_id} if item_id else {}
    return HistoryItem(
        prompt=prompt, image_type=image_type, engine=engine, seconds=seconds,
        source_name=source_name, result=data, before_preview=before_preview,
        after_preview=after_preview, thumbnail=thumbnail, size=decoded.size if changed else real or decoded.size,
        cost=cost if engine == engines.NOVITA else 0.0, notices=prepared.notices + tuple(notices), **extra,
    )


def _size_of(data: bytes) -> tuple[int, int] | None:
    """An image's size from its header alone."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError):
        return None


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
    elif error.kind == "retired" and limiter is None:  # a pasted key: nothing to pause, the owner still must act
        log.error("Novita no longer serves this model (%s): %s", error.reason or error.status, error.fix)
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
