"""The thin client for Novita's `POST /v3/replace-background`, and its error tree.

Every request goes through `replace_background()`. Retries come from urllib3's `Retry` and happen
only where the server cannot have processed (so cannot have charged) the request: connection errors,
429 and 503. Everything else surfaces as a typed `NovitaError` carrying a sentence for people.
"""

from __future__ import annotations

import base64
import binascii
import http.cookiejar
import json
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache

import requests
from PIL import Image
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from services import config, images

log = logging.getLogger(__name__)

PATH = "/v3/replace-background"
IMAGE_TYPES = ("png", "webp", "jpeg")
RETRY_AFTER_MAX = 30.0  # a longer wait is the person's call, not an automatic one
BODY_EXCERPT = 300


class NovitaError(Exception):
    """Base of every failure; `user_message` is one sentence for people, `retryable` offers a retry."""

    retryable = True

    def __init__(self, message: str, user_message: str | None = None) -> None:
        super().__init__(message)
        self.user_message = user_message or message


class ConfigurationError(NovitaError):
    """The app is set up wrong (no key, unsafe base URL, bad timeout); fixing it needs the owner."""

    retryable = False


class APIConnectionError(NovitaError):
    """Novita could not be reached, or the connection broke before a full reply."""


class APITimeoutError(APIConnectionError):
    """Novita did not answer within the read timeout."""


class InvalidResponseError(NovitaError):
    """A 200 whose body is not a usable image."""


class APIStatusError(NovitaError):
    """Novita answered with an error status; `message` is Novita's own text when it sent one."""

    retryable = False

    def __init__(self, user_message: str, *, status: int, reason: str | None, message: str | None,
                 request_id: str | None) -> None:
        detail = f"HTTP {status}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
        super().__init__(detail, user_message)
        self.status, self.reason, self.message, self.request_id = status, reason, message, request_id


class BadRequestError(APIStatusError):
    """400/413/422: the photo or the prompt was refused."""


class AuthenticationError(APIStatusError):
    """401/403: the key is missing, wrong, or has no access."""


class InsufficientBalanceError(APIStatusError):
    """403 NOT_ENOUGH_BALANCE: the account has no credits left."""


class RateLimitError(APIStatusError):
    """429 after the automatic retries; `retry_after` is in seconds when Novita said so."""

    retryable = True

    def __init__(self, user_message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(user_message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: Novita or a gateway in front of it failed."""

    retryable = True


@dataclass(frozen=True)
class ReplaceResult:
    """The image Novita made, in the requested type, and what it took."""

    image: bytes
    image_type: str
    seconds: float
    request_id: str | None = None
    converted: bool = False  # Novita sent another type and it was converted here
    decoded: Image.Image | None = field(default=None, repr=False, compare=False)  # checked pixels, for previews


class _PaidRetry(Retry):
    """urllib3 Retry that gives up (returning the reply) when Retry-After asks for a long wait."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status in self.RETRY_AFTER_STATUS_CODES:
            wait = self.get_retry_after(response)
            if wait is not None and wait > RETRY_AFTER_MAX:
                raise MaxRetryError(_pool, url, ResponseError("Retry-After is too long to wait"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


RETRY = _PaidRetry(
    total=4,
    connect=2,  # refused or unreachable: nothing was sent
    read=False,  # the request may have been processed: never re-send a paid call, and keep ReadTimeout as is
    other=0,
    status=3,
    status_forcelist=(429, 503),  # rejected before any work
    allowed_methods=frozenset({"POST"}),
    backoff_factor=0.5,
    backoff_max=4.0,
    raise_on_status=False,
    respect_retry_after_header=True,
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
    """Send a prepared photo and a prompt to Novita; return the new image in `image_type`."""
    if image_type not in IMAGE_TYPES:
        msg = f"Output format must be one of {', '.join(IMAGE_TYPES)}."
        raise ConfigurationError(msg)
    key = config.api_key(api_key)
    if key and not (key.isascii() and key.isprintable() and " " not in key):
        msg = ("That API key has characters a Novita key never has (spaces, quotes or symbols from "
               "copying). Paste the key again exactly as Novita shows it.")
        raise ConfigurationError(msg)
    if not key:
        msg = ("No Novita API key is set. Paste your own key in the sidebar, or ask the app's owner to add "
               "NOVITA_API_KEY to the app's secrets.")
        raise ConfigurationError(msg)
    try:
        url = config.base_url(base_url) + PATH
        read_timeout = config.timeout(timeout)
    except config.ConfigError as exc:
        raise ConfigurationError(str(exc)) from None

    body = {
        "image_file": base64.b64encode(image).decode("ascii"),
        "prompt": prompt,
        "extra": {"response_image_type": image_type, "enterprise_plan": {"enabled": bool(enterprise)}},
    }
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Accept": "application/json"}
    started = time.monotonic()
    try:
        response = _session().post(url, json=body, headers=headers, timeout=(config.CONNECT_TIMEOUT, read_timeout))
        content = response.content  # read fully here so a reset mid-reply is a connection error
    except requests.ConnectTimeout:
        msg = "Could not reach Novita in time. Check the connection and press Try again."
        raise APITimeoutError(msg) from None
    except requests.Timeout:
        msg = (f"Novita took longer than {read_timeout:g} s to answer. Press Try again in a moment, or try "
               "a smaller photo.")
        raise APITimeoutError(msg) from None
    except requests.RequestException as exc:
        log.warning("replace-background: connection failed (%s)", type(exc).__name__)
        msg = "Could not reach Novita, or the connection broke. Check the connection and press Try again."
        raise APIConnectionError(msg) from None
    seconds = time.monotonic() - started
    request_id = response.headers.get("X-Request-Id") or response.headers.get("X-Trace-Id")
    log.info("replace-background: HTTP %s in %.2f s (request id %s)", response.status_code, seconds, request_id)
    if response.status_code != 200:
        raise status_error(response.status_code, content, response.headers, request_id, secret=key)
    data, converted, decoded = _decode_image(content, image_type)
    return ReplaceResult(data, image_type, seconds, request_id, converted, decoded)


def _decode_image(content: bytes, image_type: str) -> tuple[bytes, bool, Image.Image]:
    """The image bytes from a 200 body (converted to `image_type` when Novita sent another type), and
    their decoded pixels, which prove the image whole and serve the previews."""
    unreadable = "Novita's reply could not be read as an image. Press Try again."
    try:
        payload = json.loads(content)
        encoded = payload["image_file"]
        if "," in encoded[:100] and encoded.startswith("data:"):
            encoded = encoded.split(",", 1)[1]
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidResponseError("reply body is not JSON with base64 image_file", unreadable) from None
    actual = images.sniff_format(data)
    if actual not in IMAGE_TYPES:
        raise InvalidResponseError(f"reply image_file is not a png/webp/jpeg image ({actual})", unreadable)
    try:
        # Every byte is decoded, so a cut-off image is caught here, not in the browser; a JPEG in the
        # requested type only at the scale its previews need.
        if actual == image_type:
            return data, False, images.open_image(data, fit_edge=images.PREVIEW_EDGE)
        decoded = images.open_image(data)
        return images.encode(decoded, image_type), True, decoded
    except images.ImageError:
        raise InvalidResponseError("reply image could not be decoded", unreadable) from None


def _parse_error_body(content: bytes) -> tuple[str | None, str | None]:
    """Novita's (reason, message) from an error body; HTML or garbage gives (None, short text)."""
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        reason = payload.get("reason")
        message = payload.get("message") or payload.get("error") or payload.get("msg")
        return (str(reason) if reason else None, str(message)[:BODY_EXCERPT] if message else None)
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
                 secret: str | None = None) -> APIStatusError:
    """Map an error reply to its typed error; the one place that knows status → class."""
    reason, message = _parse_error_body(content)
    if secret and message:
        message = message.replace(secret, "***")
    fields = {"status": status, "reason": reason, "message": message, "request_id": request_id}
    said = f" Novita said: “{message}”." if message else ""
    if status == 429:
        wait = _retry_after(headers)
        when = f"in about {wait:.0f} s" if wait else "in a minute"
        return RateLimitError(f"Novita is getting too many requests for this key. Try again {when}.",
                              retry_after=wait, **fields)
    balance = "balance" in f"{reason} {message}".lower()
    if status == 403 and balance:
        return InsufficientBalanceError(
            "This Novita account has no credits left. Top it up at novita.ai, or use another key.", **fields)
    if status in (401, 403):
        return AuthenticationError(
            "Novita did not accept the API key. Check the key in the sidebar, or ask the app's owner "
            "to update NOVITA_API_KEY.", **fields)
    if status == 413:
        return BadRequestError("The photo is too large for Novita. Try a smaller photo.", **fields)
    if status in (400, 422):
        return BadRequestError(f"Novita refused this photo or prompt.{said} Change the prompt or try "
                               "another photo.", **fields)
    if status == 503:
        return ServerError("Novita is overloaded or down for the moment. Try again in a minute.", **fields)
    if status in (502, 504):
        return ServerError("Novita's gateway failed or did not answer in time. Press Try again.", **fields)
    if status >= 500:
        return ServerError(f"Novita's engine failed on this photo.{said} Press Try again, or try another "
                           "prompt.", **fields)
    log.warning("replace-background: unexpected HTTP %s; check NOVITA_BASE_URL", status)
    return APIStatusError(f"Novita answered with an unexpected error (HTTP {status}). Try again later; if it "
                          "keeps happening, tell the app's owner.", **fields)
