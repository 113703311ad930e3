"""The thin client for Novita's image calls, and its error tree.

Two calls make a new background: Qwen-Image Edit (`submit_edit`, then `wait_for_edit`: an async task whose
image arrives as a short-lived link) and the seed's `POST /v3/replace-background` (`replace_background`,
retired by Novita on 2026-07-22, kept for a gateway that still serves it). Every POST goes through `_send`. urllib3's `Retry` re-sends only where the server cannot
have processed (so cannot have charged) the request: a refused connection. A 429 is not re-sent here: it
goes back through the key's limiter, so every request sent was granted by it. A 503 follows the policy
written beside `SERVICE_UNAVAILABLE_RETRY_WITHIN`. Errors carry facts only (status, Novita's reason
and message, request id, what kind of fault and who must act); the page turns them into sentences.
"""

from __future__ import annotations

import base64
import binascii
import http.cookiejar
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import requests
import urllib3
from PIL import Image
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from services import config, images, previews, remote_image

log = logging.getLogger(__name__)

PATH = "/v3/replace-background"
EDIT_PATH = "/v3/async/qwen-image-edit"
RESULT_PATH = "/v3/async/task-result"
SEED_MODEL, EDIT_MODEL = "replace-background", "qwen-image-edit"
RETIRED_ON = "2026-07-22"
IMAGE_TYPES = ("png", "webp", "jpeg")
# The instruction Qwen-Image Edit gets: the person's words go inside it unchanged.
EDIT_INSTRUCTION = "Replace the background with: {prompt}. Keep the main subject exactly as it is."
RETRY_AFTER_MAX = 30.0  # a longer wait is the person's call, not an automatic one
BODY_EXCERPT = 300
# A 503 is re-sent once, and only when it came back within this many seconds: a quick 503 is traffic
# shaping that refused the call before any work; a slow one may be a gateway that gave up on a generation
# still running behind it, and re-sending that could be charged twice.
SERVICE_UNAVAILABLE_RETRY_WITHIN = 5.0
SERVICE_UNAVAILABLE_BACKOFF = 1.0

# Who must act on a failure: the person (their photo, their prompt, or try again later), or the app's
# owner (credit, key, access, verification, billing, the app's own set-up).
PERSON, OWNER = "person", "owner"
# The owner-side refusals after which sending on that key again cannot work until the owner acts.
KEY_STOPPERS = frozenset({"balance", "key", "access", "verification", "billing", "retired"})


class NovitaError(Exception):
    """Base of every failure. `kind` names the fault for the page's sentence, `actor` who must act,
    `retryable` whether a one-click retry makes sense. str(err) is for logs and holds no secret."""

    retryable = True
    kind = "unexpected"
    actor = PERSON


class ConfigurationError(NovitaError):
    """The app is set up wrong or the key is unusable; `kind` is "no_key", "key_chars" or "settings", and
    `facts` what a settings sentence needs (`image_types` when an output format outside them was asked)."""

    retryable = False
    actor = OWNER

    def __init__(self, message: str, kind: str = "settings", **facts: object) -> None:
        super().__init__(message)
        self.kind, self.facts = kind, facts


class APIConnectionError(NovitaError):
    """Novita could not be reached, or the connection broke before a full reply. `sent` is False only when
    the request certainly never left (refused, unresolvable, connect timeout): nothing can have been charged."""

    kind = "unreachable"

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class APITimeoutError(APIConnectionError):
    """Novita did not answer in time: `seconds` is the limit that ran out, `connecting` says which."""

    kind = "timeout"

    def __init__(self, message: str, *, seconds: float, connecting: bool = False) -> None:
        super().__init__(message, sent=not connecting)
        self.seconds, self.connecting = seconds, connecting


class InvalidResponseError(NovitaError):
    """A 200 whose body is not a usable image."""

    kind = "unreadable"


class APIStatusError(NovitaError):
    """Novita answered with an error; the facts of its body are kept as they came."""

    retryable = False

    def __init__(self, *, status: int, reason: str | None, message: str | None, request_id: str | None,
                 kind: str, actor: str, fix: str) -> None:
        detail = f"HTTP {status}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
        super().__init__(detail)
        self.status, self.reason, self.message, self.request_id = status, reason, message, request_id
        self.kind, self.actor, self.fix = kind, actor, fix
        self.seconds: float | None = None  # how long the reply took, once known

    @property
    def stops_key(self) -> bool:
        """True when no request on this key can work until its owner acts (credit, key, access…)."""
        return self.kind in KEY_STOPPERS


class BadRequestError(APIStatusError):
    """400/413/422: the photo, the prompt or the request was refused."""


class AuthenticationError(APIStatusError):
    """401/403: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but the account may not use this API yet (access, verification, billing)."""


class InsufficientBalanceError(APIStatusError):
    """The account has no credit left (400 BILLING_BALANCE_NOT_ENOUGH, or 403 NOT_ENOUGH_BALANCE)."""


class NotFoundError(APIStatusError):
    """404: the path or the base URL is wrong."""


class RateLimitError(APIStatusError):
    """429: the key is over Novita's rate; `retry_after` is in seconds when Novita said so."""

    retryable = True

    def __init__(self, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: Novita or a gateway in front of it failed."""

    retryable = True


class PromptTooLongError(NovitaError):
    """The prompt is over `config.PROMPT_MAX_CHARS`; nothing was sent."""

    kind = "prompt_too_long"
    retryable = False

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"prompt of {length} characters, over {limit}")
        self.length, self.limit = length, limit


class TaskFailedError(NovitaError):
    """Novita accepted the task, then ended it as failed; `reason` is its free text (for the log), and
    `about_content` says whether that text names the content (the prompt or the photo)."""

    kind = "task_failed"

    def __init__(self, task_id: str, reason: str | None) -> None:
        super().__init__(f"task {task_id} failed at Novita: {reason or 'no reason given'}")
        self.task_id, self.reason = task_id, reason
        words = (reason or "").lower()
        self.about_content = any(w in words for w in ("content", "nsfw", "prompt", "sensitive", "policy",
                                                        "moderation", "illegal", "safety"))
        self.retryable = not self.about_content  # the same words would be refused again: rephrase first


class TaskTimeoutError(APITimeoutError):
    """The task did not end within `seconds` (`NOVITA_TIMEOUT`); it was accepted, so it may still be paid."""

    kind = "task_timeout"

    def __init__(self, task_id: str, seconds: float) -> None:
        super().__init__(f"task {task_id} did not end within {seconds:g} s", seconds=seconds)
        self.task_id = task_id


class LinkExpiredError(NovitaError):
    """Novita made the image, but its link had expired (twice: a fresh read of the task gave no live one)."""

    kind = "link_expired"


class UntrustedLinkError(InvalidResponseError):
    """The task's image link names a place this server does not fetch from; `why` names the rule."""

    kind = "untrusted_link"

    def __init__(self, why: str) -> None:
        super().__init__(f"image link refused: {why}")
        self.why = why


@dataclass(frozen=True)
class Row:
    """One line of the error table: the class raised, the fault's kind, who must act, what to fix (logs)."""

    cls: type[APIStatusError]
    kind: str
    actor: str
    fix: str


# Novita's published error table for image APIs, row by row (../shared/NOVITA_API.md), then the spellings
# its LLM APIs use for the same faults. Classified by reason first; `BY_STATUS` covers unknown reasons.
BY_REASON: dict[str, Row] = {
    "INVALID_REQUEST_BODY": Row(BadRequestError, "request", OWNER,
                                "Novita called the request malformed: a fault of this app, not of the photo"),
    "IMAGE_FILE_EXCEEDS_MAX_SIZE": Row(BadRequestError, "photo_limits", PERSON,
                                       "the prepared photo is over Novita's file size: preparation should prevent it"),
    "INVALID_IMAGE_FORMAT": Row(BadRequestError, "photo_format", PERSON,
                                "Novita refused the prepared photo's format: preparation should prevent it"),
    "IMAGE_EXCEEDS_MAX_RESOLUTION": Row(BadRequestError, "photo_limits", PERSON,
                                        "the prepared photo is over Novita's resolution: preparation should prevent it"),
    "INVALID_IMAGE_SIZE": Row(BadRequestError, "photo_limits", PERSON,
                              "the prepared photo's width or height is over Novita's limit: preparation should prevent it"),
    "ILLEGAL_PROMPT": Row(BadRequestError, "prompt_refused", PERSON, "content moderation refused the prompt"),
    "ILLEGAL_IMAGE_CONTENT": Row(BadRequestError, "photo_refused", PERSON, "content moderation refused the photo"),
    "BILLING_BALANCE_NOT_ENOUGH": Row(InsufficientBalanceError, "balance", OWNER, "top up the Novita account"),
    "MISSING_API_KEY": Row(BadRequestError, "request", OWNER,
                           "no key reached Novita: check NOVITA_API_KEY and that no proxy strips Authorization"),
    "INVALID_API_KEY": Row(AuthenticationError, "key", OWNER,
                           "the key is wrong or revoked: set a valid NOVITA_API_KEY in the app's secrets"),
    "API_NOT_ALLOWED": Row(PermissionDeniedError, "access", OWNER,
                           "the key may not use replace-background: enable the API for the Novita account"),
    "NEED_REAL_NAME_VERIFY": Row(PermissionDeniedError, "verification", OWNER,
                                 "finish the Novita account's verification"),
    "BILLING_AUTH_FAILED": Row(PermissionDeniedError, "billing", OWNER,
                               "billing could not authorise the call: fix the Novita account's billing"),
    "API_NOT_FOUND": Row(NotFoundError, "setup", OWNER, "wrong path or base URL: check NOVITA_BASE_URL"),
    "MODEL_NOT_FOUND": Row(NotFoundError, "retired", OWNER,
                           "Novita does not serve this model: set NOVITA_MODEL to one its docs list"),
    "RATE_LIMIT_EXCEEDED": Row(RateLimitError, "rate_limit", PERSON, "over the key's images-per-minute limit"),
    "BILLING_FAILED": Row(ServerError, "novita", PERSON, "Novita's billing failed on its side"),
    "TASK_FAILED": Row(ServerError, "novita", PERSON, "Novita's engine failed on its side"),
    "CREATE_TASK_FAILED": Row(ServerError, "novita", PERSON, "Novita could not create the task"),
    # Spellings of Novita's LLM APIs for the same faults.
    "NOT_ENOUGH_BALANCE": Row(InsufficientBalanceError, "balance", OWNER, "top up the Novita account"),
    "FAILED_TO_AUTH": Row(AuthenticationError, "key", OWNER,
                          "the key was refused: set a valid NOVITA_API_KEY in the app's secrets"),
}

# When the reason is missing or unknown: the status decides.
BY_STATUS: dict[int, Row] = {
    400: Row(BadRequestError, "refused", PERSON, "Novita refused the photo or the prompt"),
    401: Row(AuthenticationError, "key", OWNER, "the key was refused: set a valid NOVITA_API_KEY"),
    403: Row(AuthenticationError, "key", OWNER, "the key was refused: set a valid NOVITA_API_KEY"),
    404: Row(NotFoundError, "setup", OWNER, "wrong path or base URL: check NOVITA_BASE_URL"),
    410: Row(NotFoundError, "retired", OWNER,
             "Novita does not serve this model any more: set NOVITA_MODEL to one its docs list"),
    413: Row(BadRequestError, "photo_limits", PERSON, "a proxy or Novita found the request too large"),
    422: Row(BadRequestError, "refused", PERSON, "Novita refused the photo or the prompt"),
    429: Row(RateLimitError, "rate_limit", PERSON, "over the key's images-per-minute limit"),
    502: Row(ServerError, "gateway", PERSON, "Novita's gateway failed"),
    503: Row(ServerError, "unavailable", PERSON, "Novita is overloaded or down"),
    504: Row(ServerError, "gateway", PERSON, "Novita's gateway timed out"),
}
SERVER_ROW = Row(ServerError, "novita", PERSON, "Novita's side failed")
UNEXPECTED_ROW = Row(APIStatusError, "unexpected", OWNER, "an unexpected status: check NOVITA_BASE_URL")
# The seed's path answers 404 or 410 since Novita retired it, whatever reason it names.
RETIRED_SEED_ROW = Row(NotFoundError, "retired", OWNER,
                       f"Novita retired this model on {RETIRED_ON}; set NOVITA_MODEL={EDIT_MODEL}")


def classify(status: int, reason: str | None, message: str | None = None, model: str | None = None) -> Row:
    """The table row for an error reply: by Novita's reason first, then by status. On the seed's retired
    call (`model` "replace-background") a 404 or 410 is the retirement, not a wrong address."""
    if model == SEED_MODEL and status in (404, 410):
        return RETIRED_SEED_ROW
    row = BY_REASON.get((reason or "").strip().upper())
    if row is not None:
        return row
    if status == 403 and "balance" in f"{reason} {message}".lower():  # unknown spelling of "no credit"
        return BY_REASON["NOT_ENOUGH_BALANCE"]
    if status in BY_STATUS:
        return BY_STATUS[status]
    return SERVER_ROW if status >= 500 else UNEXPECTED_ROW


@dataclass(frozen=True)
class ReplaceResult:
    """The image an engine made, in the requested type, and what it took."""

    image: bytes
    image_type: str
    seconds: float
    request_id: str | None = None
    converted: bool = False  # Novita sent another type and it was converted here
    decoded: Image.Image | None = field(default=None, repr=False, compare=False)  # checked pixels, for previews
    before: Image.Image | None = field(default=None, repr=False, compare=False)  # the photo in the result's frame
    notices: tuple[str, ...] = ()  # what the engine changed that the person should know


RETRY = Retry(
    total=4,
    connect=2,  # refused or unreachable: nothing was sent
    read=False,  # the request may have been processed: never re-send a paid call, and keep ReadTimeout as is
    other=0,
    status=0,  # no status is re-sent here: a 429 goes back through the limiter, a 503 has its own policy
    status_forcelist=(),
    allowed_methods=frozenset({"POST"}),
    backoff_factor=0.5,
    backoff_max=4.0,
    raise_on_status=False,
    respect_retry_after_header=False,  # else urllib3 re-sends any 413/429/503 that carries Retry-After
)


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    """One pooled session per process; it holds no per-user state (the key travels per request)."""
    session = requests.Session()
    session.trust_env = False  # no netrc or proxy auth from the host leaks into requests
    # The pool serves everyone: a cookie set on one person's reply must never ride on the next request.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.mount("https://", HTTPAdapter(max_retries=RETRY, pool_maxsize=8))
    session.mount("http://", HTTPAdapter(max_retries=RETRY, pool_maxsize=8))
    return session


def replace_background(image: bytes, prompt: str, image_type: str = "png", *, api_key: str | None = None,
                       base_url: str | None = None, timeout: float | None = None,
                       enterprise: bool = False) -> ReplaceResult:
    """The seed's call: send a prepared photo and a prompt; return the new image in `image_type`."""
    key, root, read_timeout = _settings(image_type, prompt, api_key, base_url, timeout)
    body = _json_body(image, prompt, image_type, enterprise)
    response, content, seconds = _send(root + PATH, body, key, read_timeout, SEED_MODEL)
    request_id = _request_id(response)
    data, converted, decoded = _decode_image(content, image_type, response.headers, request_id, key)
    return ReplaceResult(data, image_type, seconds, request_id, converted, decoded)


def edit_instruction(prompt: str) -> str:
    """What Qwen-Image Edit is asked: the person's words, unchanged, inside the one instruction."""
    return EDIT_INSTRUCTION.format(prompt=prompt)


@dataclass(frozen=True)
class Submitted:
    """Novita accepted a task: its id is the receipt from which the image is collected, however late."""

    task_id: str
    seconds: float
    request_id: str | None = None


# Novita does not document whether `image` takes raw base64 or a data: URI. The first form is sent; a 400
# saying the body or the image is invalid sends the other once. A refused request is not charged, so the
# second try costs nothing; the form that worked is kept for the process and said once in the log.
IMAGE_FORMS = ("data", "raw")
_forms_lock = threading.Lock()
_form = {"use": IMAGE_FORMS[0], "known": False}
TASK_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def submit_edit(image: bytes, prompt: str, image_type: str = "png", *, api_key: str | None = None,
                base_url: str | None = None, timeout: float | None = None, seed: int = -1) -> Submitted:
    """Ask Qwen-Image Edit for a new background (`POST /v3/async/qwen-image-edit`); return the task's id."""
    key, root, read_timeout = _settings(image_type, prompt, api_key, base_url, timeout)
    with _forms_lock:
        form, known = _form["use"], _form["known"]
    started = time.monotonic()
    for resend in (False, True):
        body = _edit_body(image, edit_instruction(prompt), image_type, seed, form)
        response, content, _ = _send(root + EDIT_PATH, body, key, read_timeout, EDIT_MODEL)
        if response.status_code == 200 or known or resend or not _maybe_encoding(response.status_code, content):
            break
        form = IMAGE_FORMS[1 - IMAGE_FORMS.index(form)]
        log.info("qwen-image-edit: Novita refused the image's encoding; sending it once more as %s", _FORM_NAMES[form])
    seconds = time.monotonic() - started
    request_id = _request_id(response)
    if response.status_code != 200:
        error = status_error(response.status_code, content, response.headers, request_id, secret=key, model=EDIT_MODEL)
        error.seconds = seconds
        raise error
    task_id = _task_id(content, response.headers, request_id, key)
    with _forms_lock:
        if not _form["known"]:
            _form.update(use=form, known=True)
            log.info("qwen-image-edit: Novita takes the image as %s", _FORM_NAMES[form])
    return Submitted(task_id, seconds, request_id)


_FORM_NAMES = {"data": "a data: URI", "raw": "raw base64"}


def _edit_body(image: bytes, instruction: str, image_type: str, seed: int, form: str) -> bytes:
    """{"prompt", "image", "seed", "output_format"} as JSON bytes; the photo's base64 goes in as it is (it
    holds nothing JSON escapes)."""
    prefix = f"data:image/{images.sniff_format(image) or 'png'};base64,".encode("ascii") if form == "data" else b""
    rest = json.dumps({"prompt": instruction, "seed": int(seed), "output_format": image_type})
    return b"".join((b'{"image": "', prefix, base64.b64encode(image), b'", ', rest[1:].encode("ascii")))


def _maybe_encoding(status: int, content: bytes) -> bool:
    """True for a refusal that may be about how `image` was encoded: the body or the image called invalid."""
    if status not in (400, 422):
        return False
    reason, _ = _parse_error_body(content)
    return (reason or "").upper() in ("", "INVALID_REQUEST_BODY", "INVALID_IMAGE_FORMAT") or reason not in BY_REASON


def _task_id(content: bytes, headers, request_id: str | None, secret: str) -> str:
    """The task id from an accepted POST; a 200 that carries Novita's error shape is that error."""
    payload = _reply(content, "task_id", headers, request_id, secret, EDIT_MODEL)
    task_id = payload.get("task_id") if isinstance(payload, dict) else None
    if not isinstance(task_id, str) or not 0 < len(task_id) <= 128 or not set(task_id) <= TASK_ID_CHARS:
        raise InvalidResponseError("reply has no usable task_id")
    return task_id


@dataclass(frozen=True)
class TaskState:
    """One read of a task: its status (QUEUED, PROCESSING, SUCCEED, FAILED or another word Novita adds),
    progress in % and eta in seconds when given, the failure's free text, and the image link once made."""

    status: str
    progress: int | None = None
    eta: float | None = None
    reason: str | None = None
    image_url: str | None = None
    image_type: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in ("SUCCEED", "FAILED")


POLL_READ_TIMEOUT = 30.0
RESULT_MAX_BYTES = 1024 * 1024  # a task's result is a few hundred bytes of JSON


def task_result(task_id: str, *, api_key: str | None = None, base_url: str | None = None) -> TaskState:
    """One read of a task (`GET /v3/async/task-result`). Connection faults and error replies raise the
    client's typed errors; a poll is never paid for, so the caller may read again."""
    key, root, _ = _settings("png", "", api_key, base_url, None)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        response = _session().get(root + RESULT_PATH, params={"task_id": task_id}, headers=headers,
                                  timeout=(config.CONNECT_TIMEOUT, POLL_READ_TIMEOUT), stream=True)
        with response:
            content = response.raw.read(RESULT_MAX_BYTES + 1, decode_content=True)
    except requests.ConnectTimeout:
        raise APITimeoutError("connecting to Novita timed out", seconds=config.CONNECT_TIMEOUT,
                              connecting=True) from None
    except requests.Timeout:
        raise APITimeoutError(f"no task result within {POLL_READ_TIMEOUT:g} s", seconds=POLL_READ_TIMEOUT) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise APIConnectionError(f"task result: connection failed ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise status_error(response.status_code, content[:RESULT_MAX_BYTES], response.headers,
                           _request_id(response), secret=key, model=EDIT_MODEL)
    if len(content) > RESULT_MAX_BYTES:
        raise InvalidResponseError("task result is too long")
    return _task_state(content)


def _task_state(content: bytes) -> TaskState:
    try:
        payload = json.loads(content)
        task = payload["task"]
        status = str(task["status"]).upper().removeprefix("TASK_STATUS_")
    except (ValueError, KeyError, TypeError):
        raise InvalidResponseError("task result has no task status") from None
    url = kind = None
    if status == "SUCCEED":  # with no usable link (an output filtered out, say) it ends as failed, below
        images_ = payload.get("images")
        first = images_[0] if isinstance(images_, list) and images_ and isinstance(images_[0], dict) else {}
        link = first.get("image_url")
        url = link if isinstance(link, str) and link.strip() else None
        kind = str(first.get("image_type") or "").lower() or None
    reason = task.get("reason")
    return TaskState(status[:40], _number(task.get("progress_percent")), _number(task.get("eta")),
                     str(reason)[:BODY_EXCERPT] if reason else None, url, kind)


def _number(value) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number >= 0 else None


FIRST_POLL = 1.0  # seconds after the POST: a quick task is collected at once
POLL_EVERY = 2.5  # then every few seconds (Novita advises 3-5 s; a person is watching)
TRANSIENT_BACKOFF = 5.0  # after a poll Novita refused for rate


class _Pacer:
    """Spaces every poll of the process at least 1/`rate` s apart, so 30 tasks in flight cost Novita at
    most `rate` reads a second between them."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self._lock = threading.Lock()
        self._next = 0.0

    def turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.gap
        if slot > now:
            time.sleep(slot - now)


POLLS_PER_SECOND = 5.0
_pacer = _Pacer(POLLS_PER_SECOND)
Progress = Callable[[TaskState], None]


def wait_for_edit(task_id: str, image_type: str, *, api_key: str | None = None, base_url: str | None = None,
                  timeout: float | None = None, submitted_at: float | None = None,
                  progress: Progress | None = None) -> ReplaceResult:
    """Poll the task until it ends, then fetch its image at once: the image's bytes (in the type Novita
    made, said by `image_type` of the result), decoded whole. A poll that fails for a moment is read again;
    the POST is never sent again here. Gives up `NOVITA_TIMEOUT` seconds after `submitted_at`."""
    try:
        limit = config.timeout(timeout)
    except config.ConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    started = submitted_at if submitted_at is not None else time.monotonic()
    due = started + FIRST_POLL
    polls = 0
    while True:
        now = time.monotonic()
        if now >= started + limit:
            raise TaskTimeoutError(task_id, limit)
        time.sleep(max(0.0, min(due, started + limit) - now))
        if time.monotonic() >= started + limit:
            raise TaskTimeoutError(task_id, limit)
        _pacer.turn()
        polls += 1
        due = time.monotonic() + POLL_EVERY
        try:
            state = task_result(task_id, api_key=api_key, base_url=base_url)
        except RateLimitError as exc:
            due = time.monotonic() + min(RETRY_AFTER_MAX, exc.retry_after or TRANSIENT_BACKOFF)
            continue
        except (APIConnectionError, ServerError, InvalidResponseError) as exc:
            log.info("qwen-image-edit: a poll of task %s failed (%s); reading again", task_id, type(exc).__name__)
            continue
        if progress is not None:
            progress(state)
        if state.status == "FAILED":
            log.warning("qwen-image-edit: task %s failed at Novita: %s", task_id, state.reason or "no reason given")
            raise TaskFailedError(task_id, state.reason)
        if state.status == "SUCCEED" and state.image_url is None:
            log.warning("qwen-image-edit: task %s succeeded without an image link", task_id)
            raise TaskFailedError(task_id, state.reason or "Novita finished the task without an image")
        if state.status == "SUCCEED":
            result = _collect(task_id, state, api_key, base_url, time.monotonic() - started, image_type)
            log.info("qwen-image-edit: task %s collected after %d polls in %.1f s", task_id, polls, result.seconds)
            return result


def _collect(task_id: str, state: TaskState, api_key: str | None, base_url: str | None, seconds: float,
             image_type: str) -> ReplaceResult:
    """Fetch the finished task's image from its link, untrusted: never with the key, only from a public https
    host or Novita's own origin, bounded. A dead link gets one fresh read of the task for a new one."""
    root = config.base_url(base_url)
    for fresh_read in (False, True):
        if fresh_read:
            state = task_result(task_id, api_key=api_key, base_url=base_url)
            if state.image_url is None:
                raise LinkExpiredError(f"task {task_id}: a fresh read gave no image link")
        try:
            data = remote_image.fetch(state.image_url, root)
            break
        except remote_image.RefusedURL as exc:
            log.warning("qwen-image-edit: task %s named an image link this app does not fetch (%s)", task_id, exc.why)
            raise UntrustedLinkError(exc.why) from None
        except remote_image.FetchFailed as exc:
            if fresh_read:
                if exc.expired:
                    raise LinkExpiredError(f"task {task_id}: the image link expired") from None
                raise InvalidResponseError(f"task {task_id}: {exc}") from None
            log.info("qwen-image-edit: task %s's image link failed (%s); reading the task once more", task_id, exc)
    actual = images.sniff_format(data)
    if actual not in IMAGE_TYPES:
        raise InvalidResponseError(f"task {task_id}: the image link holds no png/webp/jpeg image ({actual})")
    try:
        decoded = images.open_image(data)  # every byte: a cut-off image is caught here, not in the browser
    except images.ImageError:
        raise InvalidResponseError(f"task {task_id}: the image could not be decoded") from None
    return ReplaceResult(data, actual, seconds, task_id, actual != image_type, decoded)


BALANCE_PATH = "/openapi/v1/billing/balance/detail"
BALANCE_TIMEOUT = (2.0, 3.0)


def available_balance(*, api_key: str | None = None, base_url: str | None = None) -> float | None:
    """The account's available balance in dollars (`GET /openapi/v1/billing/balance/detail`, whose figures are
    strings in 1/10,000 USD), or None when it cannot be read: it is a nicety, never a reason to fail."""
    try:
        key, root, _ = _settings("png", "", api_key, base_url, None)
        response = _session().get(root + BALANCE_PATH, headers={"Authorization": f"Bearer {key}",
                                                                "Accept": "application/json"},
                                  timeout=BALANCE_TIMEOUT)  # read while the sidebar draws: never long
        if response.status_code != 200:
            log.info("balance: HTTP %s", response.status_code)
            return None
        return int(str(response.json()["availableBalance"])) / 10_000
    except (NovitaError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
        log.info("balance: not read (%s)", type(exc).__name__)
        return None


def _settings(image_type: str, prompt: str, api_key: str | None, base_url: str | None,
              timeout: float | None) -> tuple[str, str, float]:
    """(key, base URL, read timeout) for a call, or the typed error that says what is wrong. The prompt's
    length is bounded here, the one choke point every call passes, not only in the widget."""
    if image_type not in IMAGE_TYPES:
        raise ConfigurationError(f"output format {image_type!r} is not one of {IMAGE_TYPES}",
                                 image_types=IMAGE_TYPES)
    if len(prompt) > config.PROMPT_MAX_CHARS:
        raise PromptTooLongError(len(prompt), config.PROMPT_MAX_CHARS)
    key = config.api_key(api_key)
    if key and not (key.isascii() and key.isprintable() and " " not in key):
        raise ConfigurationError("the API key has characters a Novita key never has", "key_chars")
    if not key:
        raise ConfigurationError("no Novita API key is set (NOVITA_API_KEY)", "no_key")
    try:
        return key, config.base_url(base_url), config.timeout(timeout)
    except config.ConfigError as exc:
        raise ConfigurationError(str(exc)) from None


def _send(url: str, body: bytes, key: str, read_timeout: float, model: str) -> tuple[requests.Response, bytes, float]:
    """One paid POST, sent once more only after a quick 503 (see the constant); an error reply of the seed's
    call raises here, the edit call's is left to its caller (it may resend in the other image form)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"}
    started = attempt = time.monotonic()
    response, content = _post(url, body, headers, read_timeout)
    wait = _resend_after_503(response, time.monotonic() - started)
    if wait is not None:
        log.info("%s: quick 503; sending once more in %.1f s", model, wait)
        time.sleep(wait)
        attempt = time.monotonic()
        response, content = _post(url, body, headers, read_timeout)
    seconds = time.monotonic() - started
    request_id = _request_id(response)
    log.info("%s: HTTP %s in %.2f s (request id %s)", model, response.status_code, seconds, request_id)
    if response.status_code != 200 and (model == SEED_MODEL or response.status_code not in (400, 422)):
        error = status_error(response.status_code, content, response.headers, request_id, secret=key, model=model)
        error.seconds = time.monotonic() - attempt  # the last answer's own time: a slow 503 may hide work
        raise error
    return response, content, seconds


def _request_id(response: requests.Response) -> str | None:
    return response.headers.get("X-Request-Id") or response.headers.get("X-Trace-Id")


def _json_body(image: bytes, prompt: str, image_type: str, enterprise: bool) -> bytes:
    """The request body: {"image_file", "prompt", "extra"} as JSON bytes. The photo's base64 holds nothing
    JSON escapes, so it goes in as it is; json.dumps would copy and scan its megabytes three more times."""
    rest = json.dumps({
        "prompt": prompt,
        "extra": {"response_image_type": image_type, "enterprise_plan": {"enabled": bool(enterprise)}},
    })
    return b"".join((b'{"image_file": "', base64.b64encode(image), b'", ', rest[1:].encode("ascii")))


def _post(url: str, body: bytes, headers: dict, read_timeout: float) -> tuple[requests.Response, bytes]:
    """One POST through the session's retries; connection faults become typed errors."""
    try:
        response = _session().post(url, data=body, headers=headers, timeout=(config.CONNECT_TIMEOUT, read_timeout),
                                   stream=True)
        try:  # read fully here, in one read (requests' own reads 10 KB at a time), so a reset mid-reply is a
            content = b"".join(response.iter_content(None))  # connection error; the same errors as .content
        except BaseException:
            response.close()
            raise
        return response, content
    except requests.ConnectTimeout:
        raise APITimeoutError("connecting to Novita timed out", seconds=config.CONNECT_TIMEOUT,
                              connecting=True) from None
    except requests.Timeout:
        raise APITimeoutError(f"no reply within {read_timeout:g} s", seconds=read_timeout) from None
    except requests.RequestException as exc:
        log.warning("novita: connection failed (%s)", type(exc).__name__)
        raise APIConnectionError(f"connection failed ({type(exc).__name__})", sent=not _never_left(exc)) from None


def _never_left(exc: requests.RequestException) -> bool:
    """True when urllib3 gave up before a connection existed (refused, unresolvable): nothing was sent."""
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)  # a MaxRetryError carries the last failure as its reason
    return isinstance(reason, NewConnectionError)  # NameResolutionError is one too


def _resend_after_503(response: requests.Response, seconds: float) -> float | None:
    """Seconds to wait before the one re-send a 503 allows, or None when it must not be re-sent: a 503
    that took long may come from a gateway that gave up on work still running (see the constant)."""
    if response.status_code != 503 or seconds > SERVICE_UNAVAILABLE_RETRY_WITHIN:
        return None
    wait = _retry_after(response.headers)
    if wait is None:
        return SERVICE_UNAVAILABLE_BACKOFF
    return wait if wait <= RETRY_AFTER_MAX else None


def _decode_image(content: bytes, image_type: str, headers, request_id: str | None,
                  secret: str) -> tuple[bytes, bool, Image.Image]:
    """The image bytes from a 200 body (converted to `image_type` when Novita sent another type), and
    their decoded pixels, which prove the image whole and serve the previews. A 200 that carries Novita's
    error shape and no image is that error."""
    payload = _reply(content, "image_file", headers, request_id, secret, SEED_MODEL)
    try:
        encoded = payload["image_file"]
        if "," in encoded[:100] and encoded.startswith("data:"):
            encoded = encoded.split(",", 1)[1]
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidResponseError("reply body has no base64 image_file") from None
    actual = images.sniff_format(data)
    if actual not in IMAGE_TYPES:
        raise InvalidResponseError(f"reply image_file is not a png/webp/jpeg image ({actual})")
    try:
        # Every byte is decoded, so a cut-off image is caught here, not in the browser; a JPEG in the
        # requested type only at the scale its previews need.
        if actual == image_type:
            return data, False, images.open_image(data, fit_edge=previews.PREVIEW_EDGE)
        decoded = images.open_image(data)
        return images.encode(decoded, image_type), True, decoded
    except images.ImageError:
        raise InvalidResponseError("reply image could not be decoded") from None


def _reply(content: bytes, wanted: str, headers, request_id: str | None, secret: str, model: str):
    """The JSON of a 200 reply; one that carries Novita's error shape instead of `wanted` is that error."""
    try:
        payload = json.loads(content)
    except ValueError:
        raise InvalidResponseError("reply body is not JSON") from None
    if isinstance(payload, dict) and wanted not in payload and ("reason" in payload or "code" in payload):
        code = payload.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        raise status_error(status, content, headers, request_id, secret=secret, model=model)
    return payload


def _parse_error_body(content: bytes) -> tuple[str | None, str | None]:
    """Novita's (reason, message) from an error body; HTML or garbage gives (None, short text)."""
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        reason = payload.get("reason")
        message = payload.get("message") or payload.get("error") or payload.get("msg")
        return (str(reason)[:80] if reason else None, str(message)[:BODY_EXCERPT] if message else None)
    text = " ".join(content.decode("utf-8", "replace").split())
    if not text or text.startswith("<"):  # an HTML page from a proxy says nothing a person can use
        return None, None
    return None, text[:BODY_EXCERPT]


def _retry_after(headers) -> float | None:
    """Seconds from a numeric Retry-After header, when present and sane."""
    try:
        value = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def status_error(status: int, content: bytes, headers, request_id: str | None = None, *,
                 secret: str | None = None, model: str | None = None) -> APIStatusError:
    """The typed error for an error reply, from the one table above; never holds the key."""
    reason, message = _parse_error_body(content)
    if secret:
        reason = reason.replace(secret, "***") if reason else reason
        message = message.replace(secret, "***") if message else message
    row = classify(status, reason, message, model)
    fields = {"status": status, "reason": reason, "message": message, "request_id": request_id,
              "kind": row.kind, "actor": row.actor, "fix": row.fix}
    if row.cls is RateLimitError:
        return RateLimitError(retry_after=_retry_after(headers), **fields)
    if row is UNEXPECTED_ROW:
        log.warning("%s: unexpected HTTP %s; check NOVITA_BASE_URL", model or "novita", status)
    return row.cls(**fields)
