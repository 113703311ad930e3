"""The steps of one replacement, run by a worker of `services.runs`: send (reserve the image, wait for a
slot on the key's line, call the engine) and finish (previews, the history item). No Streamlit here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from services import budget, engines, images, novita
from services.budget import Account, BudgetExceeded, Ledger
from services.history import HistoryItem
from services.images import PreparedImage
from services.quota import bucket_for

log = logging.getLogger(__name__)
RATE_LIMIT_BACKOFF = 15.0  # seconds every session holds off after a 429 that said nothing about when
RATE_LIMIT_HOLD_MAX = 60.0  # a 429 asking for longer holds everyone this long at most
RATE_LIMIT_RETURNS = 1  # times a photo goes back in line after a 429 before it fails with a Try again
UNEXPECTED = ("Something went wrong on our side while making this image. Press Try again; if it keeps "
              "happening, try another photo.")
Progress = Callable[..., None]


class Cancelled(Exception):
    """The person cancelled while waiting for a slot; nothing was sent."""


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
    if isinstance(error, BudgetExceeded):
        return budget_message(error), False
    if isinstance(error, novita.NovitaError):
        return error.user_message, error.retryable
    if isinstance(error, (images.ImageError, Cancelled)):
        return str(error), False
    return UNEXPECTED, True


def budget_message(error: BudgetExceeded) -> str:
    """The sentence for a run the owner's budget refused: which limit, whose, and what still works."""
    images_ = f"{error.limit} Novita image{'' if error.limit == 1 else 's'}"
    if error.kind == budget.DAY:
        when = error.resets_at.strftime("%H:%M UTC") if error.resets_at else "midnight UTC"
        return (f"The app's owner allows {images_} a day on the shared key, for everyone together, and today's "
                f"are used up{'' if error.left == 0 else f' but for {error.left}'}. It starts again at {when}. "
                "The offline studio still works, or paste your own Novita key in the sidebar.")
    if error.left and error.needed > error.left:
        return (f"This needs {error.needed} Novita images but this session has {error.left} left of the "
                f"{error.limit} the app's owner allows. Use fewer photos or prompts, or choose the offline "
                "studio in the sidebar.")
    return (f"The app's owner allows {images_} per session, and this session has used them. The offline "
            "studio still works: choose it in the sidebar, or paste your own Novita key there.")


def certainly_not_processed(error: BaseException) -> bool:
    """True when Novita cannot have made (or charged for) the image: nothing was sent, the call was refused
    before any work (429, an owner-side refusal, another 4xx, 503), or the app's settings stopped it."""
    if isinstance(error, (Cancelled, novita.ConfigurationError, BudgetExceeded)):
        return True
    if getattr(error, "actor", None) == "owner":
        return True
    status = getattr(error, "status", None)
    return isinstance(error, novita.APIStatusError) and status is not None and (400 <= status < 500 or status == 503)


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
        reservation = ledger.reserve(account, owner_key=owner_key, cost=cost)
        try:
            report(stage="Waiting for a free slot on the shared key")
            granted = ledger.limiter.acquire(bucket, cancel=cancel,
                                             on_wait=lambda place, seconds: report(waiting=(place, seconds)))
            report(waiting=False)
            if not granted:
                raise Cancelled("Cancelled while waiting; nothing was sent to Novita.")
            result = _call(prepared, prompt, image_type, engine, api_key, report)
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
    report(stage="Sending the photo to Novita and waiting for the new background" if engine == engines.NOVITA
           else "Cutting out the subject and painting a backdrop")
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


def _silent(stage=None, step=None, waiting=None) -> None:
    """A `progress` that tells no one."""
