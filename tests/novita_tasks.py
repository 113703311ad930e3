"""Novita's async Qwen-Image Edit task API, as the loopback stand-in in ``tests.novita_stub`` speaks it.

``POST /v3/async/qwen-image-edit`` answers a task id at once; ``GET /v3/async/task-result?task_id=…`` tells the
task's state (QUEUED, then PROCESSING, then SUCCEED or FAILED, over ``latency`` seconds); a finished task names
its image by a presigned-like URL on the stand-in's own "object store" (``/objects/<token>.<ext>?X-Expires=…``),
a fresh one on every read, each expiring ``image_url_ttl`` seconds after it was issued. Also here: the image
checks both this API and the seed's share, and ``render_edit``, the stand-in's instruction editor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageFilter

EDIT_PATH = "/v3/async/qwen-image-edit"
RESULT_PATH = "/v3/async/task-result"
IMAGE_PREFIX = "/objects/"
TASK_TYPE = "QWEN_IMAGE_EDIT"

IMAGE_TYPES = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}
OTHER_TYPE = {"png": "webp", "webp": "png", "jpeg": "png"}
ENCODER_OPTIONS = {"png": {"compress_level": 1}, "webp": {"quality": 80, "method": 0}, "jpeg": {"quality": 85}}
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_EDGE = 4096
MAX_SEED = 2147483647
IMAGE_FORMS = frozenset({"data", "raw"})  # how `image` may be sent: a data: URI, plain base64
EDIT_AREA = 1024 * 1024  # the editor works at about one megapixel
SIDE_STEP = 16  # and both sides of its output are multiples of this
SUBJECTS = ("kept", "recoloured", "moved")
DEFAULT_FAIL_REASON = "The image could not be generated, please try again."
STUCK_PROGRESS = 57  # where a stuck task's progress freezes
HUGE_IMAGE_BYTES = 31 * 1024 * 1024
STREAM_CHUNK = 1024 * 1024

# The kinds of request a scripted fault may wait for (Fault.at): a POST of an image (either API), a read of a
# task's result, a GET of an issued image link, anything else.
KINDS = ("submit", "poll", "image", "other")
# Faults a submit to EDIT_PATH plans into its task: name -> Task fields.
TASK_PLANS = {
    "task-failed": {},  # fail_reason is set from the fault
    "task-stuck": {"stuck": True},
    "link-expired": {"expired_links": "all"},
    "link-expired-once": {"expired_links": "once"},
    "foreign-url": {},  # foreign is set from the fault
    "same-size": {"same_size": True},
    "recoloured-subject": {"subject": "recoloured"},
    "moved-subject": {"subject": "moved"},
}
IMAGE_FAULTS = frozenset({"redirect", "huge-image"})  # taken by an image GET
SEED_FAULTS = frozenset({"retired"})  # taken by a POST to the seed's path
TASK_FAULTS = frozenset({*TASK_PLANS, *IMAGE_FAULTS, *SEED_FAULTS})

QUEUED, PROCESSING = "TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING"
SUCCEED, FAILED = "TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"

_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(.*)", re.DOTALL)
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "webp": b"RIFF\xff\xff\xff\x01WEBPVP8 ", "jpeg": b"\xff\xd8\xff\xe0"}


class BadRequest(Exception):
    pass


def uses_latency(path: str) -> bool:
    """Whether an answer waits `latency` seconds: the seed's synchronous call does; on the async API the POST
    answers at once and `latency` is how long the task takes."""
    route = urlsplit(path).path
    return route not in (EDIT_PATH, RESULT_PATH) and not route.startswith(IMAGE_PREFIX)


def prompt_colour(prompt: str) -> tuple[int, int, int]:
    return tuple(hashlib.sha256(prompt.encode()).digest()[:3])


def truncated_image(image_type: str) -> bytes:
    """The first half of a real image: the right magic bytes, but it cannot be decoded."""
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, IMAGE_TYPES[image_type])
    return buf.getvalue()[: buf.tell() // 2]


def decode_image(raw: bytes, name: str) -> Image.Image:
    """The checks Novita makes of a decoded image file: size, edge, decodable; raise BadRequest otherwise."""
    if len(raw) > MAX_IMAGE_BYTES:
        raise BadRequest(f"{name} exceeds 30 MB")
    try:
        img = Image.open(io.BytesIO(raw))
    except Exception:  # noqa: BLE001
        raise BadRequest(f"{name} is not a supported image") from None
    if max(img.size) > MAX_EDGE:
        raise BadRequest(f"image exceeds {MAX_EDGE} pixels per edge")
    try:
        img.load()
    except Exception:  # noqa: BLE001
        raise BadRequest(f"{name} could not be decoded") from None
    return img


def split_image_field(value: str) -> tuple[str, str]:
    """("data", base64) for a data:image/…;base64, URI, ("raw", value) otherwise; BadRequest for a broken URI."""
    if value[:5].lower() == "data:":
        match = _DATA_URI.fullmatch(value)
        if match is None:
            raise BadRequest("image encoding: not a valid data:image/<type>;base64, URI")
        return "data", match.group(1)
    return "raw", value


class EditImage(NamedTuple):
    format: str
    size: tuple[int, int]
    mode: str
    form: str  # "data" or "raw"


def describe_edit_image(data) -> EditImage | None:
    """What an edit POST's `image` field holds, or None if it holds no readable image."""
    try:
        form, encoded = split_image_field(data["image"])
        with Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as img:
            return EditImage(img.format, img.size, img.mode, form)
    except Exception:  # noqa: BLE001 - anything unreadable is "no image"
        return None


class EditRequest(NamedTuple):
    source: bytes  # the decoded image file
    size: tuple[int, int]
    prompt: str
    image_type: str
    seed: int


def parse_edit(body: bytes, forms) -> EditRequest:
    """Validate a Qwen-Image Edit body; `forms` are the image encodings accepted. BadRequest otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("request body must be JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    prompt, image = data.get("prompt"), data.get("image")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt is required and must be a non-empty string")
    if not isinstance(image, str) or not image:
        raise BadRequest("image is required and must be a string")
    seed = data.get("seed", -1)
    if type(seed) is not int or not -1 <= seed <= MAX_SEED:
        raise BadRequest(f"seed must be an integer from -1 to {MAX_SEED}")
    image_type = data.get("output_format", "jpeg")
    if image_type not in IMAGE_TYPES:
        raise BadRequest("output_format must be one of jpeg, png, webp")
    form, encoded = split_image_field(image)
    if form not in forms:
        wanted = "raw base64 without a data: prefix" if "raw" in forms else "a data:image/<type>;base64, URI"
        sent = "a data: URI" if form == "data" else "raw base64"
        raise BadRequest(f"image encoding not accepted: got {sent}, send {wanted}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("image is not valid base64") from None
    img = decode_image(raw, "image")
    seed = secrets.randbelow(MAX_SEED + 1) if seed == -1 else seed
    return EditRequest(raw, img.size, prompt, image_type, seed)


def edit_size(size: tuple[int, int]) -> tuple[int, int]:
    """The editor's output size for an input of `size`: about one megapixel, same aspect, sides multiples of 16."""
    w, h = size
    aspect = w / h
    return (max(SIDE_STEP, round(math.sqrt(EDIT_AREA * aspect) / SIDE_STEP) * SIDE_STEP),
            max(SIDE_STEP, round(math.sqrt(EDIT_AREA / aspect) / SIDE_STEP) * SIDE_STEP))


def render_edit(img: Image.Image, prompt: str, image_type: str, *, size: tuple[int, int] | None = None,
                subject: str = "kept") -> bytes:
    """An instruction editor's answer: the photo at `size` (default about one megapixel, sides multiples of 16),
    the outer border painted a colour derived from the prompt, and the whole picture redrawn (a slight blur,
    one channel shifted six levels) so no pixel is the photo's. subject="recoloured" recolours the centre in
    place; subject="moved" shrinks the centre to 60 % and moves it to the left over the prompt's colour."""
    if subject not in SUBJECTS:
        raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}")
    size = tuple(size) if size else edit_size(img.size)
    w, h = size
    src = img.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    out = Image.new("RGB", size, prompt_colour(prompt))
    b = max(1, min(w, h) // 8)
    if w > 2 * b and h > 2 * b:
        box = (b, b, w - b, h - b)
        centre = src.crop(box)
        if subject == "recoloured":  # R -> G -> B -> R, same shapes
            red, green, blue = centre.split()
            out.paste(Image.merge("RGB", (blue, red, green)), box)
        elif subject == "moved":
            cw, ch = centre.size
            small = centre.resize((max(1, cw * 3 // 5), max(1, ch * 3 // 5)), Image.Resampling.BICUBIC)
            out.paste(small, (b, b + (ch - small.height) // 2))
        else:
            out.paste(centre, box)
    red, _, blue = out.filter(ImageFilter.GaussianBlur(0.8)).split()
    green = out.getchannel("G").point(lambda v: v + 6 if v < 250 else v - 6)  # never the level it was
    buf = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buf, IMAGE_TYPES[image_type], **ENCODER_OPTIONS[image_type])
    return buf.getvalue()


@dataclass
class Task:
    """One accepted edit: its timeline (created, duration) and its plan (how it ends, what its links do)."""

    task_id: str
    created: float  # time.monotonic()
    submitted_ms: int  # wall clock, for debug_info
    duration: float
    request: EditRequest
    image_type: str
    fail_reason: str | None = None
    stuck: bool = False
    expired_links: str | None = None  # "all" or "once"
    foreign: str | None = None  # "" names the default foreign host; else the image_url to give
    same_size: bool = False
    subject: str = "kept"
    urls_issued: int = 0
    _output: bytes | None = field(default=None, repr=False)
    _render_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def state(self, now: float) -> tuple[str, int, int]:
        """(status, progress_percent, eta) at time.monotonic() `now`."""
        t, d = now - self.created, self.duration
        if t < 0.25 * d:
            return QUEUED, 0, math.ceil(d - t)
        progress = min(99, max(1, 1 + int(98 * (t - 0.25 * d) / (0.75 * d)))) if d > 0 else 99
        if self.stuck:
            return PROCESSING, min(progress, STUCK_PROGRESS), max(0, math.ceil(d - t))
        if t < d:
            return PROCESSING, progress, math.ceil(d - t)
        return (FAILED, 0, 0) if self.fail_reason is not None else (SUCCEED, 100, 0)

    def output(self) -> bytes:
        """The edited image, rendered on first use and kept."""
        with self._render_lock:
            if self._output is None:
                with Image.open(io.BytesIO(self.request.source)) as img:
                    size = img.size if self.same_size else None
                    self._output = render_edit(img, self.request.prompt, self.image_type, size=size,
                                               subject=self.subject)
            return self._output

    def reply(self, now: float, images: list[dict]) -> dict:
        status, progress, eta = self.state(now)
        started = now - self.created >= 0.25 * self.duration
        ended = status in (SUCCEED, FAILED)
        return {
            "task": {"task_id": self.task_id, "status": status,
                     "reason": self.fail_reason if status == FAILED else "", "task_type": TASK_TYPE,
                     "eta": eta, "progress_percent": progress},
            "images": images,
            "extra": {"seed": str(self.request.seed), "debug_info": {
                "submit_time_ms": str(self.submitted_ms),
                "execute_time_ms": str(self.submitted_ms + int(250 * self.duration)) if started else "0",
                "complete_time_ms": str(self.submitted_ms + int(1000 * self.duration)) if ended else "0",
            }},
        }


def new_task(request: EditRequest, duration: float, fault) -> Task:
    """A task for an accepted edit, planned by the fault its submit took (None: a normal task)."""
    name = getattr(fault, "name", None)
    plan = dict(TASK_PLANS.get(name, {}))
    if name == "task-failed":
        plan["fail_reason"] = fault.message or DEFAULT_FAIL_REASON
    elif name == "foreign-url":
        plan["foreign"] = fault.message or ""
    image_type = request.image_type
    if name == "other-type":  # the output comes in another format than the one asked for
        image_type = OTHER_TYPE[image_type]
    return Task(uuid.uuid4().hex, time.monotonic(), int(time.time() * 1000), duration, request, image_type,
                **plan)


class TaskBook:
    """Tasks by id and the object store's issued links by token, guarded by the stub's lock."""

    def __init__(self, lock: threading.Lock):
        self.lock = lock
        self.tasks: dict[str, Task] = {}
        self.links: dict[str, tuple[str, int]] = {}  # token -> (task id, unix expiry)

    def clear(self) -> None:
        with self.lock:
            self.tasks.clear()
            self.links.clear()

    def add(self, task: Task) -> None:
        with self.lock:
            self.tasks[task.task_id] = task

    def get(self, task_id: str) -> Task | None:
        with self.lock:
            return self.tasks.get(task_id)

    def issue(self, task: Task, base_url: str, ttl: int) -> str:
        """A new presigned-like link to the task's image; an expired one when the task's plan says so."""
        token = uuid.uuid4().hex
        with self.lock:
            task.urls_issued += 1
            dead = task.expired_links == "all" or (task.expired_links == "once" and task.urls_issued == 1)
            expires = int(time.time()) - 1 if dead else int(time.time()) + ttl
            self.links[token] = (task.task_id, expires)
        if task.foreign:
            return task.foreign
        if task.foreign == "":
            base_url = f"http://127.0.0.2:{urlsplit(base_url).port}"
        return f"{base_url}{IMAGE_PREFIX}{token}.{task.image_type}?X-Expires={expires}"

    def link(self, token: str) -> tuple[Task, int] | None:
        with self.lock:
            found = self.links.get(token)
            return None if found is None else (self.tasks[found[0]], found[1])


def xml_error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


class TaskRoutes:
    """The async API's routes, mixed into the stand-in's request handler (which gives _authorised, _error,
    _send, request_id and server.stub)."""

    def _submit_edit(self, body: bytes, fault) -> None:
        stub = self.server.stub
        if not self._authorised():
            return None
        try:
            request = parse_edit(body, stub.image_forms)
        except BadRequest as exc:
            return self._error(400, "INVALID_REQUEST_BODY", str(exc))
        task = new_task(request, stub.latency, fault)
        stub._book.add(task)
        return self._send(200, json.dumps({"task_id": task.task_id}).encode())

    def _task_result(self) -> None:
        stub = self.server.stub
        if not self._authorised():
            return None
        task_id = (parse_qs(urlsplit(self.path).query).get("task_id") or [""])[0]
        if not task_id:
            return self._error(400, "INVALID_REQUEST_BODY", "task_id is required")
        task = stub._book.get(task_id)
        if task is None:
            return self._error(404, "TASK_NOT_FOUND", "task not found")
        now = time.monotonic()
        images = []
        if task.state(now)[0] == SUCCEED:
            ttl = stub.image_url_ttl
            images = [{"image_url": stub._book.issue(task, stub.base_url, ttl), "image_url_ttl": ttl,
                       "image_type": task.image_type, "nsfw_detection_result": None}]
        return self._send(200, json.dumps(task.reply(now, images)).encode())

    def _object(self, fault) -> None:
        """A GET of an issued link, as a presigned object store answers it: no key needed, none allowed."""
        stub = self.server.stub
        parts = urlsplit(self.path)
        token, _, ext = parts.path[len(IMAGE_PREFIX):].partition(".")
        name = getattr(fault, "name", None)
        if name == "redirect":
            where = fault.message or f"http://127.0.0.2:{stub._server.server_address[1]}{IMAGE_PREFIX}x.png"
            return self._send(302, b"", "text/plain", headers={"Location": where})
        if name == "huge-image":
            return self._stream(ext if ext in IMAGE_TYPES else "png")
        if self.command not in ("GET", "HEAD"):
            return self._send(405, xml_error("MethodNotAllowed", "The specified method is not allowed"),
                              "application/xml")
        if "Authorization" in self.headers:  # a presigned link is its own credential: a second one is refused
            return self._send(400, xml_error("InvalidArgument", "Only one auth mechanism allowed; only the "
                                             "X-Expires query parameter or the Authorization header should be "
                                             "specified"), "application/xml")
        found = stub._book.link(token)
        if found is None or found[0].image_type != ext:
            return self._send(404, xml_error("NoSuchKey", "The specified key does not exist."), "application/xml")
        task, expires = found
        if parse_qs(parts.query).get("X-Expires") != [str(expires)]:
            return self._send(403, xml_error("AccessDenied", "Request signature does not match"), "application/xml")
        if time.time() >= expires:
            return self._send(403, xml_error("AccessDenied", "Request has expired"), "application/xml")
        return self._send(200, task.output(), f"image/{task.image_type}")

    def _bad_object(self, name: str) -> None:
        """An unusable 200 from the object store (BAD_200 faults taken by an image GET)."""
        ext = urlsplit(self.path).path.rpartition(".")[2]
        ext = ext if ext in IMAGE_TYPES else "png"
        if name == "not-an-image":
            return self._send(200, b"hello world, not an image", f"image/{ext}")
        if name == "truncated-image":
            return self._send(200, truncated_image(ext), f"image/{ext}")
        if name == "empty-200":
            return self._send(200, b"", f"image/{ext}")
        return self._send(200, b"<html><body>Object not available</body></html>", "text/html")

    def _stream(self, ext: str) -> None:
        """200 with a 31 MiB image body, sent in chunks; stops when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", f"image/{ext}")
        self.send_header("Content-Length", str(HUGE_IMAGE_BYTES))
        self.send_header("X-Request-Id", self.request_id)
        for header, value in self.server.stub.reply_headers.items():
            self.send_header(header, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        chunk = bytes(STREAM_CHUNK)
        first = _MAGIC[ext] + chunk[len(_MAGIC[ext]):]
        sent = 0
        try:
            while sent < HUGE_IMAGE_BYTES and not self.server.stub._stopping.is_set():
                piece = first if sent == 0 else chunk
                piece = piece[: HUGE_IMAGE_BYTES - sent]
                self.wfile.write(piece)
                sent += len(piece)
        except OSError:  # broken pipe or reset: the client gave up, as it should
            pass
        if sent < HUGE_IMAGE_BYTES:
            self.close_connection = True

