"""A loopback stand-in for Novita, with scriptable faults: the seed's synchronous
``POST /v3/replace-background`` (retired by Novita on 2026-07-22: ``seed_retired=True`` answers as the retired
endpoint does) and the async Qwen-Image Edit task API that does the job today (``POST /v3/async/qwen-image-edit``,
``GET /v3/async/task-result``, and the presigned-like image links a finished task names, served under
``/objects/``; see ``tests.novita_tasks``).

Used by unit, AppTest and browser tests and by benchmarks; ``python -m tests.novita_stub`` runs it by hand.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import io
import json
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests.novita_tasks import (  # noqa: F401 - EDIT_PATH … render_edit are this module's names too
    EDIT_PATH,
    ENCODER_OPTIONS,
    IMAGE_FORMS,
    IMAGE_PREFIX,
    IMAGE_TYPES,
    KINDS,
    MAX_EDGE,
    MAX_IMAGE_BYTES,
    OTHER_TYPE,
    RESULT_PATH,
    TASK_FAULTS,
    BadRequest,
    EditImage,
    Task,
    TaskBook,
    TaskRoutes,
    decode_image,
    describe_edit_image,
    prompt_colour,
    render_edit,
    truncated_image,
    uses_latency,
)

PATH = "/v3/replace-background"
BALANCE_PATH = "/openapi/v1/billing/balance/detail"
MAX_BODY_BYTES = 48 * 1024 * 1024  # like a proxy's body cap: base64 of 30 MB plus room
UPLOAD_CHUNK = 64 * 1024  # bytes read at a time on a modelled link

# Novita's published error table for image APIs (../shared/NOVITA_API.md), each fault named by its reason:
# (status, reason, message).
DOCUMENTED_ERRORS = {
    reason: (status, reason, message) for reason, status, message in [
        ("INVALID_REQUEST_BODY", 400, "invalid request body"),
        ("IMAGE_FILE_EXCEEDS_MAX_SIZE", 400, "image file exceeds max size"),
        ("INVALID_IMAGE_FORMAT", 400, "invalid image format"),
        ("IMAGE_EXCEEDS_MAX_RESOLUTION", 400, "image exceeds max resolution"),
        ("INVALID_IMAGE_SIZE", 400, "invalid image size"),
        ("ILLEGAL_PROMPT", 400, "prompt contains illegal content"),
        ("ILLEGAL_IMAGE_CONTENT", 400, "image contains illegal content"),
        ("BILLING_BALANCE_NOT_ENOUGH", 400, "insufficient balance"),
        ("MISSING_API_KEY", 400, "missing api key"),
        ("INVALID_API_KEY", 403, "invalid api key"),
        ("API_NOT_ALLOWED", 403, "api not allowed"),
        ("NEED_REAL_NAME_VERIFY", 403, "need real name verify"),
        ("BILLING_AUTH_FAILED", 403, "billing auth failed"),
        ("API_NOT_FOUND", 404, "api not found"),
        ("RATE_LIMIT_EXCEEDED", 429, "rate limit exceeded"),
        ("BILLING_FAILED", 500, "billing failed"),
        ("TASK_FAILED", 500, "task failed"),
        ("CREATE_TASK_FAILED", 500, "create task failed"),
        ("MODEL_NOT_FOUND", 404, "model not found"),  # Novita's general error guide
        # the spellings of Novita's LLM APIs for the same faults
        ("NOT_ENOUGH_BALANCE", 403, "Insufficient balance"),
        ("FAILED_TO_AUTH", 401, "failed to authenticate API key"),
    ]
}
# JSON error bodies by short names the tests have long used: (status, reason, message).
JSON_ERRORS = {
    **DOCUMENTED_ERRORS,
    "400": (400, "INVALID_REQUEST_BODY", "prompt contains forbidden words"),
    "401": (401, "FAILED_TO_AUTH", "failed to authenticate API key"),
    "403-key": (403, "INVALID_API_KEY", "invalid api-key"),
    "403-balance": (403, "NOT_ENOUGH_BALANCE", "Insufficient balance"),
    "404": (404, "NOT_FOUND", "not found"),
    "410": (410, "MODEL_DEPRECATED", "this model has been retired"),
    "413-json": (413, "REQUEST_ENTITY_TOO_LARGE", "request entity too large"),
    "429": (429, "TOO_MANY_REQUESTS", "rate limit exceeded"),
    "429-no-retry-after": (429, "TOO_MANY_REQUESTS", "rate limit exceeded"),
    "500": (500, "INTERNAL_ERROR", "engine error"),
    "503": (503, "SERVICE_NOT_AVAILABLE", "Service unavailable"),
}
# HTML bodies, as a proxy in front of the API (or a captive portal) would send them.
HTML_ERRORS = {
    "413": (413, "413 Request Entity Too Large"),
    "502": (502, "502 Bad Gateway"),
    "504": (504, "504 Gateway Time-out"),
    "html-200": (200, "Welcome"),
}
# 200 replies whose body is unusable: name -> function(requested type) -> body bytes.
BAD_200 = {
    "no-image-file": lambda t: json.dumps({"image_type": t}).encode(),
    "bad-base64": lambda t: json.dumps({"image_file": "!!!not base64!!!", "image_type": t}).encode(),
    "not-an-image": lambda t: json.dumps(
        {"image_file": base64.b64encode(b"hello world, not an image").decode(), "image_type": t}
    ).encode(),
    "truncated-image": lambda t: json.dumps({"image_file": _truncated_image(t), "image_type": t}).encode(),
    "empty-200": lambda t: b"",
}


def _truncated_image(image_type: str) -> str:
    """Base64 of the first half of a real image: the right magic bytes, but it cannot be decoded."""
    return base64.b64encode(truncated_image(image_type)).decode()


# Besides the faults above, the async API's (tests.novita_tasks): taken by a submit to EDIT_PATH, they plan
# its task: "task-failed", "task-stuck", "link-expired", "link-expired-once", "foreign-url", "same-size",
# "recoloured-subject", "moved-subject"; taken by an image GET: "redirect", "huge-image"; taken by a POST to
# PATH: "retired". Taken by any other request, they leave its answer as it would be.
FAULTS = frozenset({*JSON_ERRORS, *HTML_ERRORS, *BAD_200, "timeout", "reset", "other-type", *TASK_FAULTS})
RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class Fault:
    """A scripted behaviour; the parameters apply to the faults named beside them."""

    name: str
    retry_after: float | str | None = None  # "429": Retry-After value (default 1); "503": sent when set
    delay: float | None = None  # "timeout": seconds to hang before answering (default 5); JSON errors: before erring
    status: int | None = None  # JSON error faults: override the status code (e.g. 422)
    message: str | None = None  # JSON error faults: override Novita's message
    in_200: bool = False  # JSON error faults: send the error body with HTTP 200 and no image
    # Scripted: wait in the queue for the first request of this kind (KINDS: "submit", "poll", "image",
    # "other"); None: the next request takes it. With always(): apply to requests of this kind only.
    at: str | None = None
    # message also serves: "task-failed": the task's reason; "foreign-url", "redirect": the URL to name

    def __post_init__(self) -> None:
        if self.name not in FAULTS:
            msg = f"unknown fault {self.name!r}; known: {', '.join(sorted(FAULTS))}"
            raise ValueError(msg)
        if self.at is not None and self.at not in KINDS:
            msg = f"unknown request kind {self.at!r}; known: {', '.join(KINDS)}"
            raise ValueError(msg)


class ImageInfo(NamedTuple):
    format: str
    size: tuple[int, int]
    mode: str


class Headers(dict):
    """Request headers with case-insensitive lookup; the Authorization value never shows in repr."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __repr__(self) -> str:
        return repr({k: ("<redacted>" if k == "authorization" else v) for k, v in self.items()})


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: Headers
    body: bytes = field(repr=False)
    received_at: float  # time.monotonic()
    request_id: str  # the X-Request-Id the stand-in answered with

    @cached_property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @cached_property
    def image(self) -> ImageInfo | None:
        """Format, size and mode of the image sent in ``image_file``, or None if there is none."""
        try:
            with Image.open(io.BytesIO(base64.b64decode(self.json["image_file"], validate=True))) as img:
                return ImageInfo(img.format, img.size, img.mode)
        except Exception:  # noqa: BLE001 - anything unreadable is "no image"
            return None

    @cached_property
    def edit(self) -> EditImage | None:
        """Format, size, mode and form ("data" or "raw") of the image sent in an edit POST's ``image``."""
        return describe_edit_image(self.json) if isinstance(self.json, dict) else None

    @cached_property
    def kind(self) -> str:
        return request_kind(self.method, self.path)


def request_kind(method: str, path: str) -> str:
    """"submit", "poll", "image" or "other": what a request is, for faults that wait for one kind (Fault.at)."""
    route = urlsplit(path).path
    if method == "POST" and (route == EDIT_PATH or path == PATH):
        return "submit"
    if route == RESULT_PATH:
        return "poll"
    if route.startswith(IMAGE_PREFIX):
        return "image"
    return "other"


def _parse(body: bytes) -> tuple[Image.Image, str, str]:
    """Validate a request body as Novita does; return (image, prompt, response type) or raise BadRequest."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("request body must be JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    encoded, prompt, extra = data.get("image_file"), data.get("prompt", ""), data.get("extra", {})
    if not isinstance(encoded, str) or not encoded:
        raise BadRequest("image_file is required")
    if encoded.startswith("data:"):
        raise BadRequest("image_file must be plain base64, without a data: prefix")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    if not isinstance(extra, dict):
        raise BadRequest("extra must be an object")
    image_type = extra.get("response_image_type", "png")
    if image_type not in IMAGE_TYPES:
        raise BadRequest("extra.response_image_type must be one of png, webp, jpeg")
    plan = extra.get("enterprise_plan", {})
    if not isinstance(plan, dict) or not isinstance(plan.get("enabled", False), bool):
        raise BadRequest("extra.enterprise_plan.enabled must be a boolean")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("image_file is not valid base64") from None
    return decode_image(raw, "image_file"), prompt, image_type


def render(img: Image.Image, prompt: str, image_type: str) -> bytes:
    """A 'new background': keep the centre, paint the outer border a colour derived from the prompt."""
    alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    mode = "RGBA" if alpha and image_type != "jpeg" else "RGB"
    src = img.convert(mode)
    colour = prompt_colour(prompt) + ((255,) if mode == "RGBA" else ())
    out = Image.new(mode, src.size, colour)
    w, h = src.size
    b = max(1, min(w, h) // 8)
    if w > 2 * b and h > 2 * b:
        box = (b, b, w - b, h - b)
        out.paste(src.crop(box), box)
    buf = io.BytesIO()
    out.save(buf, IMAGE_TYPES[image_type], **ENCODER_OPTIONS[image_type])
    return buf.getvalue()


def _html(title: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


class _Handler(TaskRoutes, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close on their own
    answer_at: float | None = None  # time.monotonic() before which a normal answer is not sent
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - quiet, and never a header in any log
        pass

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _read_body(self, length: int, rate: float | None) -> bytes:
        """The request body, read no faster than `rate` bits a second when set: the sender's socket fills and
        its upload takes as long as on a link of that speed."""
        if not rate:
            return self.rfile.read(length)
        chunks, got, started = [], 0, time.monotonic()
        while got < length:
            chunk = self.rfile.read(min(UPLOAD_CHUNK, length - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            ahead = started + got * 8 / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        return b"".join(chunks)

    def _handle(self):
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        too_big = length > MAX_BODY_BYTES
        body = b"" if too_big else self._read_body(length, stub.upload_bits_per_second)
        self.request_id = uuid.uuid4().hex
        received = ReceivedRequest(
            self.command, self.path, Headers(self.headers.items()), body, time.monotonic(), self.request_id
        )
        fault = stub._record(received)
        self.answer_at = None
        if too_big:
            self.close_connection = True
            return self._send(413, _html("413 Request Entity Too Large"), "text/html")
        if fault is None or fault.name in TASK_FAULTS:
            if uses_latency(self.path):  # made first, then sent once `latency` has passed since the request
                self.answer_at = received.received_at + stub.latency
            return self._normal(body, fault)
        name = fault.name
        if name in JSON_ERRORS:
            if fault.delay:  # a gateway that gives up after a long wait
                stub._sleep(fault.delay)
            status, reason, message = JSON_ERRORS[name]
            status = fault.status or status
            asks_wait = name == "429" or (status in RETRY_AFTER_STATUSES and fault.retry_after is not None)
            headers = {"Retry-After": _seconds(fault.retry_after)} if asks_wait else {}
            return self._error(status, reason, fault.message or message, headers,
                               http_status=200 if fault.in_200 else None)
        if name in HTML_ERRORS:
            status, title = HTML_ERRORS[name]
            return self._send(fault.status or status, _html(title), "text/html")
        requested = self._requested_type(body)
        if name in BAD_200:
            if received.kind == "image":
                return self._bad_object(name)
            return self._send(200, BAD_200[name](requested))
        if name == "timeout":
            stub._sleep(5.0 if fault.delay is None else fault.delay)
            return self._normal(body)
        if name == "other-type":  # the seed answers in another type; an edit task's image comes in one
            return self._normal(body, fault, OTHER_TYPE[requested])
        if name == "reset":  # promise a long body, send a little, then RST (not a clean close)
            self._send(200, b'{"image_file": "' + b"A" * 65536 + b'", "image_type": "png"}', cut=1024)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return None
        raise AssertionError(name)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def _normal(self, body: bytes, fault: Fault | None = None, answer_type: str | None = None):
        """The answer without a fault; `fault`, when given, is one that plans a task, a link or the seed's call."""
        route = urlsplit(self.path).path
        if self.command == "POST" and route == EDIT_PATH:
            return self._submit_edit(body, fault)
        if self.command in ("GET", "HEAD") and route == RESULT_PATH:
            return self._task_result()
        if route.startswith(IMAGE_PREFIX):
            return self._object(fault)
        if self.command == "GET" and route == BALANCE_PATH:
            if self._authorised():  # units of 1/10,000 USD, as strings, as Novita sends them
                balance = str(self.server.stub.balance)
                self._send(200, json.dumps({"availableBalance": balance, "cashBalance": balance, "creditLimit": "0",
                                            "pendingCharges": "0", "outstandingInvoices": "0"}).encode())
            return None
        if self.command != "POST" or self.path != PATH:
            return self._error(*JSON_ERRORS["API_NOT_FOUND"], metadata=False)
        if not self._authorised():
            return None
        if self.server.stub.seed_retired or getattr(fault, "name", None) == "retired":
            self.answer_at = None  # a retired route answers at once
            return self._error(404, "MODEL_NOT_FOUND", "model replace-background has been retired")
        try:
            img, prompt, image_type = _parse(body)
        except BadRequest as exc:
            return self._error(400, "INVALID_REQUEST_BODY", str(exc))
        answer_type = answer_type or image_type
        encoded = base64.b64encode(render(img, prompt, answer_type)).decode()
        return self._send(200, json.dumps({"image_file": encoded, "image_type": answer_type}).encode())

    def _authorised(self) -> bool:
        """Novita's key checks; False once the refusal is sent."""
        auth = self.headers.get("Authorization") or ""
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            self._error(*JSON_ERRORS["MISSING_API_KEY"])
            return False
        valid = self.server.stub.valid_keys
        if valid is not None and key.strip() not in valid:
            self._error(*JSON_ERRORS["INVALID_API_KEY"], metadata=False)
            return False
        return True

    @staticmethod
    def _requested_type(body: bytes) -> str:
        """The image type a request asks for: the seed's extra.response_image_type, an edit's output_format."""
        try:
            data = json.loads(body)
        except ValueError:
            return "png"
        if not isinstance(data, dict):
            return "png"
        if "image" in data:
            wanted = data.get("output_format", "jpeg")
        else:
            extra = data.get("extra")
            wanted = extra.get("response_image_type") if isinstance(extra, dict) else None
        return wanted if isinstance(wanted, str) and wanted in IMAGE_TYPES else "png"

    def _error(self, status, reason, message, headers=None, *, metadata=True, http_status=None):
        payload = {"code": status, "reason": reason, "message": message, "metadata": {}}
        if not metadata:
            del payload["metadata"]
        self._send(http_status or status, json.dumps(payload).encode(), headers=headers)

    def _send(self, status, body: bytes, content_type="application/json", headers=None, *, cut=None):
        if self.answer_at is not None:
            self.server.stub._sleep(max(0.0, self.answer_at - time.monotonic()))
            self.answer_at = None
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self.request_id)
        for name, value in {**self.server.stub.reply_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[:cut])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, stub: NovitaStub):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.stub = stub
        self.connections: set[socket.socket] = set()
        super().__init__((host, port), _Handler)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up is part of the job; bugs are not
            super().handle_error(request, client_address)


class NovitaStub:
    """Context manager: ThreadingHTTPServer on loopback (free port by default), served by a daemon thread."""

    def __init__(self, *, latency: float = 0.0, valid_keys: set[str] | None = None,
                 host: str = "127.0.0.1", port: int = 0, upload_bits_per_second: float | None = None,
                 seed_retired: bool = True, image_forms=IMAGE_FORMS, image_url_ttl: int = 3600):
        # Seconds a normal answer of the seed's call takes, like the live service: rendering included. On the
        # async API the POST answers at once and this is how long each task takes (QUEUED, PROCESSING, done).
        self.latency = latency
        self.upload_bits_per_second = upload_bits_per_second  # a modelled link for request bodies; None: loopback
        self.valid_keys = None if valid_keys is None else set(valid_keys)
        self.requests: list[ReceivedRequest] = []
        self.reply_headers: dict[str, str] = {}  # sent on every reply until reset, e.g. a Set-Cookie
        self._defaults = (seed_retired, frozenset(image_forms), image_url_ttl)
        self.balance = 1_000_000  # the account's available balance in 1/10,000 USD: $100.00
        self.seed_retired = seed_retired  # the seed's PATH answers 404 MODEL_NOT_FOUND, as since 2026-07-22
        self.image_forms = set(image_forms)  # encodings of an edit's `image` accepted: "data", "raw"
        self.image_url_ttl = image_url_ttl  # seconds an issued image link works
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._book = TaskBook(self._lock)
        self._queue: collections.deque[Fault] = collections.deque()
        self._always: Fault | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def script(self, *faults: str | Fault) -> None:
        """Queue behaviours for the next requests, one each, in order; then normal behaviour resumes."""
        resolved = [_fault(f) for f in faults]
        with self._lock:
            self._queue.extend(resolved)

    def always(self, fault: str | Fault | None) -> None:
        """Behave like this for every request (after any scripted ones) until reset; None is normal."""
        resolved = None if fault is None else _fault(fault)
        with self._lock:
            self._always = resolved

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._always = None
            self.requests.clear()
            self.reply_headers = {}
            self.seed_retired, forms, self.image_url_ttl = self._defaults
            self.balance = 1_000_000
            self.image_forms = set(forms)
        self._book.clear()

    @property
    def tasks(self) -> dict[str, Task]:
        """The accepted edit tasks since reset, by task id: the stand-in's own dict, guarded by its lock."""
        return self._book.tasks

    def tasks_submitted(self) -> int:
        """Edit POSTs accepted (answered with a task id) since reset."""
        with self._lock:
            return len(self._book.tasks)

    def posts(self) -> list[ReceivedRequest]:
        """The paid calls received since reset: every POST to the edit API or the seed's path, answered or not."""
        with self._lock:
            return [r for r in self.requests if r.kind == "submit"]

    def polls(self, task_id: str | None = None) -> int:
        """Reads of task results since reset, of one task when `task_id` is given."""
        with self._lock:
            reads = [r for r in self.requests if r.kind == "poll"]
        if task_id is None:
            return len(reads)
        return sum(parse_qs(urlsplit(r.path).query).get("task_id") == [task_id] for r in reads)

    def image_fetches(self) -> list[ReceivedRequest]:
        """Requests for image links (IMAGE_PREFIX) since reset, headers as received."""
        with self._lock:
            return [r for r in self.requests if r.kind == "image"]

    def _record(self, request: ReceivedRequest) -> Fault | None:
        """Keep the request; return the fault it takes: the first queued one meant for any request or for its
        kind, else the standing one if it applies to this kind."""
        kind = request.kind
        with self._lock:
            self.requests.append(request)
            for i, fault in enumerate(self._queue):
                if fault.at is None or fault.at == kind:
                    del self._queue[i]
                    return fault
            if self._always is not None and self._always.at in (None, kind):
                return self._always
            return None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # wakes at once when the stub stops

    def start(self) -> NovitaStub:
        self._stopping.clear()
        self._server = _Server(self._host, self._port, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="novita-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._server.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> NovitaStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _fault(fault: str | Fault) -> Fault:
    return fault if isinstance(fault, Fault) else Fault(fault)


def _seconds(value: float | str | None) -> str:
    """A Retry-After value: whole seconds as an integer (as RFC 9110 wants), strings passed through."""
    if value is None:
        return "1"
    return str(int(value)) if isinstance(value, (int, float)) and float(value).is_integer() else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.novita_stub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds from a request of the seed's call to its normal answer, the stand-in's own "
                             "work included; on the async edit API, how long each task takes (the POST answers "
                             "at once)")
    parser.add_argument("--fault", choices=sorted(FAULTS), help="answer every request with this fault")
    parser.add_argument("--at", choices=KINDS, help="apply --fault only to requests of this kind")
    parser.add_argument("--seed-served", dest="seed_retired", action="store_false",
                        help="serve the seed's /v3/replace-background as a gateway still would (by default it "
                             "answers as Novita has since 2026-07-22: 404 MODEL_NOT_FOUND)")
    parser.add_argument("--image-url-ttl", type=int, default=3600, help="seconds an issued image link works")
    parser.add_argument("--retry-after", help="Retry-After for --fault 429")
    parser.add_argument("--delay", type=float, help="hang time for --fault timeout")
    parser.add_argument("--in-200", action="store_true", help="send a JSON --fault's error body with HTTP 200")
    parser.add_argument("--valid-key", action="append", help="accept only these keys (repeatable)")
    args = parser.parse_args(argv)
    stub = NovitaStub(latency=args.latency, valid_keys=args.valid_key, host=args.host, port=args.port,
                      seed_retired=args.seed_retired, image_url_ttl=args.image_url_ttl)
    if args.fault:
        stub.always(Fault(args.fault, retry_after=args.retry_after, delay=args.delay, in_200=args.in_200,
                          at=args.at))
    with stub:
        print(f"Novita stand-in on {stub.base_url} (use it as NOVITA_BASE_URL); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
