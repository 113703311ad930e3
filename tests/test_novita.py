"""services.novita against a real loopback stand-in (tests/novita_stub.py), and the stand-in itself.

Every assertion is on what the stand-in received or what the client returned: nothing is mocked.
"""

from __future__ import annotations

import base64
import importlib
import io
import logging
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from PIL import Image

from components.messages import describe
from tests.novita_stub import Fault, NovitaStub

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_test_5f1d9a7c2b8e4f60a1d3c5e7b9f2a4c6"
PATH = "/v3/replace-background"
FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}


def make_image(size=(64, 48), mode="RGB", fmt="PNG", colour=(200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour[: len(mode)] if mode != "L" else 128).save(buf, fmt)
    return buf.getvalue()


PHOTO = make_image()


def sniff(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


class NovitaStubAddress(NamedTuple):
    base_url: str  # enough of a NovitaStub for post() to reach one running elsewhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stub(stub, monkeypatch):
    """conftest's stand-in (reset for each test), with no NOVITA_* variables in the environment."""
    for name in ("NOVITA_API_KEY", "NOVITA_BASE_URL", "NOVITA_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return stub


@pytest.fixture
def novita():
    """services.novita, imported here so that a broken client fails its tests, not the stand-in's."""
    return importlib.import_module("services.novita")


# ---------------------------------------------------------------------------------------------------------
# The stand-in itself, driven with plain requests
# ---------------------------------------------------------------------------------------------------------


def payload(image=PHOTO, prompt="in a warehouse", image_type=None, **extra):
    body = {"image_file": base64.b64encode(image).decode(), "prompt": prompt}
    if image_type is not None:
        extra["response_image_type"] = image_type
    return body | ({"extra": extra} if extra else {})


def post(stub, body=None, *, key=KEY, path=PATH, timeout=10.0, **kwargs) -> requests.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    if "data" not in kwargs and "json" not in kwargs:
        kwargs["json"] = payload() if body is None else body
    return requests.post(stub.base_url + path, headers=headers, timeout=timeout, **kwargs)


@pytest.mark.parametrize("image_type", ["png", "webp", "jpeg"])
def test_stub_answers_with_a_changed_image_of_the_same_size(stub, image_type):
    r = post(stub, payload(image_type=image_type))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-Id"] == stub.requests[0].request_id
    body = r.json()
    assert set(body) == {"image_file", "image_type"} and body["image_type"] == image_type
    out = sniff(base64.b64decode(body["image_file"], validate=True))
    assert (out.format, out.size) == (FORMATS[image_type], (64, 48))
    assert out.convert("RGB").getpixel((0, 0)) != (200, 120, 40)  # border repainted
    assert max(abs(a - b) for a, b in zip(out.convert("RGB").getpixel((32, 24)), (200, 120, 40))) <= 3


def test_stub_defaults_to_png_and_colours_the_border_by_prompt(stub):
    first = sniff(base64.b64decode(post(stub, payload(prompt="beach")).json()["image_file"]))
    second = sniff(base64.b64decode(post(stub, payload(prompt="forest")).json()["image_file"]))
    assert first.format == second.format == "PNG"
    assert first.getpixel((0, 0)) != second.getpixel((0, 0))


@pytest.mark.parametrize(("image_type", "mode"), [("png", "RGBA"), ("webp", "RGBA"), ("jpeg", "RGB")])
def test_stub_keeps_transparency_where_the_format_can(stub, image_type, mode):
    r = post(stub, payload(make_image(mode="RGBA", colour=(1, 2, 3, 0)), image_type=image_type))
    assert sniff(base64.b64decode(r.json()["image_file"])).mode == mode


def test_stub_records_each_request(stub):
    post(stub, payload(make_image((30, 20), fmt="JPEG"), prompt="p", image_type="webp"))
    post(stub, path="/elsewhere")
    first, second = stub.requests
    assert (first.method, first.path, second.path) == ("POST", PATH, "/elsewhere")
    assert first.headers["authorization"] == first.headers["AUTHORIZATION"] == f"Bearer {KEY}"
    assert "Content-Type" in first.headers and first.headers.get("x-missing") is None
    assert first.json == payload(make_image((30, 20), fmt="JPEG"), prompt="p", image_type="webp")
    assert (first.image.format, first.image.size) == ("JPEG", (30, 20))
    assert first.received_at <= second.received_at
    assert KEY not in repr(first) and KEY not in str(stub.requests)


def test_stub_checks_the_key(stub):
    basic = requests.post(stub.base_url + PATH, json=payload(), headers={"Authorization": "Basic a"}, timeout=5)
    missing, blank = post(stub, key=None), post(stub, key=" ")
    assert missing.status_code == blank.status_code == basic.status_code == 400
    assert missing.json() == {"code": 400, "reason": "MISSING_API_KEY", "message": "missing api key", "metadata": {}}
    with NovitaStub(valid_keys={KEY}, seed_retired=False) as strict:
        wrong, right = post(strict, key="sk_wrong"), post(strict)
    assert wrong.status_code == 403
    assert wrong.json() == {"code": 403, "reason": "INVALID_API_KEY", "message": "invalid api key"}
    assert right.status_code == 200


def test_stub_on_a_modelled_link_takes_a_body_no_faster_than_its_rate():
    """The SDK comparison's 100 Mbit/s link: a body of B bytes takes at least 8·B ÷ rate seconds to arrive
    (a lower bound, which a busy machine only lengthens), and arrives whole."""
    body = payload()
    raw = requests.models.complexjson.dumps(body).encode()
    rate = len(raw) * 8 / 0.6  # this body in 0.6 s
    with NovitaStub(upload_bits_per_second=rate, seed_retired=False) as slow:
        started = time.monotonic()
        answer = post(slow, body)
        took = time.monotonic() - started
        assert answer.status_code == 200
        assert slow.requests[0].json == body
    assert took >= 0.55, f"{len(raw)} bytes at {rate / 1e6:.2f} Mbit/s arrived in {took:.2f} s"


@pytest.mark.parametrize(("method", "path"), [("GET", PATH), ("POST", "/v3/remove-background"), ("PUT", PATH)])
def test_stub_answers_404_off_the_contract(stub, method, path):
    r = requests.request(method, stub.base_url + path, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert r.status_code == 404
    assert r.json() == {"code": 404, "reason": "API_NOT_FOUND", "message": "api not found"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"data": b"nope"}, "must be JSON", id="not-json"),
        pytest.param({"json": [1, 2]}, "JSON object", id="not-an-object"),
        pytest.param({"json": {"prompt": "x"}}, "image_file is required", id="no-image-file"),
        pytest.param(
            {"json": {"image_file": "data:image/png;base64," + base64.b64encode(PHOTO).decode()}},
            "data: prefix",
            id="data-url",
        ),
        pytest.param({"json": {"image_file": "!!!"}}, "not valid base64", id="bad-base64"),
        pytest.param({"json": payload(b"hello")}, "not a supported image", id="not-an-image"),
        pytest.param({"json": payload(make_image((4097, 1)))}, "4096", id="edge-over-4096"),
        pytest.param({"json": payload(image_type="gif")}, "response_image_type", id="unknown-type"),
        pytest.param({"json": payload(prompt=5)}, "prompt", id="prompt-not-a-string"),
        pytest.param(
            {"json": payload(enterprise_plan={"enabled": "yes"})}, "enterprise_plan", id="enabled-not-bool"
        ),
    ],
)
def test_stub_rejects_bad_bodies(stub, kwargs, message):
    r = post(stub, **kwargs)
    assert r.status_code == 400
    body = r.json()
    assert (body["code"], body["reason"], body["metadata"]) == (400, "INVALID_REQUEST_BODY", {})
    assert message in body["message"]


def test_stub_accepts_4096_edges_and_refuses_files_over_30_mb(stub):
    assert post(stub, payload(make_image((4096, 2)))).status_code == 200
    r = post(stub, payload(b"\0" * (30 * 1024 * 1024 + 1)), timeout=30)
    assert r.status_code == 400 and "30 MB" in r.json()["message"]


JSON_FAULTS = [
    ("400", 400, "INVALID_REQUEST_BODY", "prompt contains forbidden words"),
    ("401", 401, "FAILED_TO_AUTH", "failed to authenticate API key"),
    ("403-key", 403, "INVALID_API_KEY", "invalid api-key"),
    ("403-balance", 403, "NOT_ENOUGH_BALANCE", "Insufficient balance"),
    ("404", 404, "NOT_FOUND", "not found"),
    ("413-json", 413, None, None),
    ("429-no-retry-after", 429, None, None),
    ("500", 500, "INTERNAL_ERROR", "engine error"),
    ("503", 503, "SERVICE_NOT_AVAILABLE", None),
]


@pytest.mark.parametrize(("name", "status", "reason", "message"), JSON_FAULTS, ids=[f[0] for f in JSON_FAULTS])
def test_stub_json_faults(stub, name, status, reason, message):
    stub.script(name)
    r = post(stub)
    assert r.status_code == status and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["code"] == status and body["reason"] == (reason or body["reason"]) and body["message"]
    assert body["message"] == (message or body["message"])
    assert "Retry-After" not in r.headers
    assert len(stub.requests) == 1 and post(stub).status_code == 200  # the queue is spent


@pytest.mark.parametrize(("name", "status"), [("413", 413), ("502", 502), ("504", 504), ("html-200", 200)])
def test_stub_html_faults(stub, name, status):
    stub.script(name)
    r = post(stub)
    assert (r.status_code, r.headers["Content-Type"]) == (status, "text/html")
    assert r.text.startswith("<html>")


def test_stub_429_sends_retry_after(stub):
    stub.script("429", Fault("429", retry_after=7), Fault("429", retry_after=2.0))
    assert [post(stub).headers["Retry-After"] for _ in range(3)] == ["1", "7", "2"]


def test_stub_fault_parameters_override_status_and_message(stub):
    stub.script(Fault("400", status=422, message="image too small"))
    r = post(stub)
    assert r.status_code == 422 and r.json()["message"] == "image too small"


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("no-image-file", lambda r: "image_file" not in r.json()),
        ("bad-base64", lambda r: r.json()["image_file"] == "!!!not base64!!!"),
        ("not-an-image", lambda r: base64.b64decode(r.json()["image_file"]) == b"hello world, not an image"),
        ("empty-200", lambda r: r.content == b""),
        ("other-type", lambda r: sniff(base64.b64decode(r.json()["image_file"])).format == "WEBP"),
    ],
)
def test_stub_unusable_200s(stub, name, check):
    stub.script(name)
    r = post(stub, payload(image_type="png"))
    assert r.status_code == 200 and check(r)


def test_stub_script_then_always_then_reset(stub):
    stub.always("500")
    stub.script("503", "401")
    assert [post(stub).status_code for _ in range(4)] == [503, 401, 500, 500]
    stub.reset()
    assert post(stub).status_code == 200 and len(stub.requests) == 1
    with pytest.raises(ValueError, match="unknown fault"):
        stub.script("418")


def test_stub_timeout_fault_hangs_then_answers_and_never_blocks_shutdown(stub):
    stub.script(Fault("timeout", delay=1.0))
    with pytest.raises(requests.ReadTimeout):
        post(stub, timeout=0.3)
    stub.script(Fault("timeout", delay=0.5))
    assert post(stub, timeout=5).status_code == 200
    with NovitaStub() as hung:
        hung.always(Fault("timeout", delay=60))
        threading.Thread(target=post, args=(hung,), kwargs={"timeout": 5}, daemon=True).start()
        while not hung.requests:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 30  # woken at once: far less than the 60 s hang, even on a busy machine
    hung.stop()  # stopping twice is harmless


def test_stub_reset_fault_breaks_the_connection_mid_reply(stub):
    stub.script("reset")
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        post(stub)
    assert post(stub).status_code == 200


def test_stub_latency_and_concurrency(stub):
    stub.latency = 1.0
    results: list[tuple[int, float]] = []

    def one():
        code = post(stub).status_code
        results.append((code, time.monotonic()))

    threads = [threading.Thread(target=one) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _ in results] == [200] * 8 and len(stub.requests) == 8
    first_answer = min(at for _, at in results)
    assert first_answer - started >= stub.latency
    # In parallel: every request was in before the first answer went out (an order of events, not a bound).
    assert max(r.received_at for r in stub.requests) < first_answer


def test_stub_latency_includes_its_own_rendering(stub, monkeypatch):
    """Like the live service, an answer takes `latency` seconds in all: the stand-in's rendering happens
    within that time, not after it."""
    import tests.novita_stub as novita_stub

    rendered = novita_stub.render

    render_started: list[float] = []

    def slow_render(*args):
        render_started.append(time.monotonic())
        time.sleep(0.2)
        return rendered(*args)

    monkeypatch.setattr(novita_stub, "render", slow_render)
    stub.latency = 1.0
    started = time.monotonic()
    assert post(stub).status_code == 200
    assert time.monotonic() - started >= stub.latency
    # The rendering began inside the latency, not once it was over (an order of events, not a bound).
    assert render_started[0] < stub.requests[0].received_at + stub.latency
    stub.latency = 0.0
    started = time.monotonic()
    assert post(stub).status_code == 200
    assert 0.2 <= time.monotonic() - started  # with no latency, the rendering is all it takes


def test_stub_handles_a_2048_photo(stub):
    noise = Image.effect_noise((2048, 2048), 60).convert("RGB")
    buf = io.BytesIO()
    noise.save(buf, "JPEG", quality=90)
    for image_type in FORMATS:
        r = post(stub, payload(buf.getvalue(), image_type=image_type), timeout=60)  # speed is in bench/
        assert r.status_code == 200
        assert sniff(base64.b64decode(r.json()["image_file"])).size == (2048, 2048)


def test_stub_cli_serves_in_the_foreground():
    port = free_port()
    cmd = [sys.executable, "-m", "tests.novita_stub", "--port", str(port), "--fault", "503"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        r = post(NovitaStubAddress(f"http://127.0.0.1:{port}"))
        assert r.status_code == 503
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert KEY not in output and "POST" not in output  # per-request logging is quiet


# ---------------------------------------------------------------------------------------------------------
# services.novita against the stand-in
# ---------------------------------------------------------------------------------------------------------


def call(novita, stub, image_type="png", **kwargs):
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", stub.base_url)
    return novita.replace_background(PHOTO, "in a warehouse", image_type, **kwargs)


def raised(novita, stub, **kwargs):
    """The NovitaError a call raises, and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(novita.NovitaError) as info:
        call(novita, stub, **kwargs)
    return info.value, time.monotonic() - started


def assert_sentence(err):
    for owner_key in (True, False):
        text, _ = describe(err, owner_key=owner_key)
        assert isinstance(text, str) and text.strip() and "\n" not in text.strip()
        assert KEY not in text and "<html" not in text.lower() and "Traceback" not in text


def test_request_follows_the_contract(novita, stub):
    result = call(novita, stub)
    (received,) = stub.requests
    assert (received.method, received.path) == ("POST", PATH)
    assert received.headers["Authorization"] == f"Bearer {KEY}"
    assert received.headers["Content-Type"].split(";")[0] == "application/json"
    assert received.json == {
        "image_file": base64.b64encode(PHOTO).decode(),
        "prompt": "in a warehouse",
        "extra": {"response_image_type": "png", "enterprise_plan": {"enabled": False}},
    }
    assert received.image == ("PNG", (64, 48), "RGB")
    assert result.request_id == received.request_id


def test_enterprise_plan_and_prompt_pass_through(novita, stub):
    prompt = "sur un comptoir en marbre, lumière du matin ☀ \"quoted\""
    novita.replace_background(PHOTO, prompt, "webp", api_key=KEY, base_url=stub.base_url, enterprise=True)
    assert stub.requests[0].json["prompt"] == prompt
    extra = {"response_image_type": "webp", "enterprise_plan": {"enabled": True}}
    assert stub.requests[0].json["extra"] == extra


@pytest.mark.parametrize("image_type", ["png", "webp", "jpeg"])
def test_result_is_really_the_requested_type(novita, stub, image_type):
    stub.latency = 0.2
    started = time.monotonic()
    result = call(novita, stub, image_type)
    elapsed = time.monotonic() - started
    out = sniff(result.image)
    assert (out.format, out.size) == (FORMATS[image_type], (64, 48))
    assert (result.image_type, result.converted) == (image_type, False)
    assert 0.2 <= result.seconds <= elapsed


@pytest.mark.parametrize("image_type", ["png", "webp", "jpeg"])
def test_other_type_reply_is_converted(novita, stub, image_type):
    stub.script("other-type")
    result = call(novita, stub, image_type)
    assert sniff(result.image).format == FORMATS[image_type]
    assert (result.image_type, result.converted, sniff(result.image).size) == (image_type, True, (64, 48))


# (script, always, error class, status, reason (None: an HTML body has none), Novita's message (None: not
# checked), attempts allowed, retryable (None: not checked))
ERROR_MATRIX = [
    pytest.param(["400"], None, "BadRequestError", 400, "INVALID_REQUEST_BODY",
                 "prompt contains forbidden words", {1}, False, id="fault-400-not-retried"),
    pytest.param([Fault("400", status=422)], None, "BadRequestError", 422, "INVALID_REQUEST_BODY",
                 "prompt contains forbidden words", {1}, False, id="fault-422-not-retried"),
    pytest.param(["413"], None, "BadRequestError", 413, None, None, {1}, False, id="fault-413-html"),
    pytest.param(["413-json"], None, "BadRequestError", 413, "REQUEST_ENTITY_TOO_LARGE", None, {1}, False,
                 id="fault-413-json"),
    pytest.param(["401"], None, "AuthenticationError", 401, "FAILED_TO_AUTH",
                 "failed to authenticate API key", {1}, False, id="fault-401"),
    pytest.param(["403-key"], None, "AuthenticationError", 403, "INVALID_API_KEY", "invalid api-key",
                 {1}, False, id="fault-403-key"),
    pytest.param(["403-balance"], None, "InsufficientBalanceError", 403, "NOT_ENOUGH_BALANCE",
                 "Insufficient balance", {1}, False, id="fault-403-balance"),
    pytest.param(["404"], None, "NotFoundError", 404, "NOT_FOUND", "not found", {1}, False, id="fault-404"),
    # a 429 is never re-sent below the limiter: one request, one grant
    pytest.param([], "429-no-retry-after", "RateLimitError", 429, "TOO_MANY_REQUESTS", None, {1}, True,
                 id="fault-429-no-retry-after-not-retried"),
    pytest.param([], "429", "RateLimitError", 429, "TOO_MANY_REQUESTS", None, {1}, True,
                 id="fault-429-retry-after-1-not-retried"),
    pytest.param(["500"], None, "ServerError", 500, "INTERNAL_ERROR", "engine error", {1}, True,
                 id="fault-500-not-retried"),
    pytest.param(["502"], None, "ServerError", 502, None, None, {1}, True, id="fault-502-html-not-retried"),
    pytest.param([], "503", "ServerError", 503, "SERVICE_NOT_AVAILABLE", None, {2}, True,
                 id="fault-503-quick-sent-once-more"),
    pytest.param(["504"], None, "ServerError", 504, None, None, {1}, True, id="fault-504-html-not-retried"),
    pytest.param(["reset"], None, "APIConnectionError", None, None, None, {1}, True,
                 id="fault-reset-not-retried"),
    pytest.param(["html-200"], None, "InvalidResponseError", None, None, None, {1}, None, id="fault-html-200"),
    pytest.param(["no-image-file"], None, "InvalidResponseError", None, None, None, {1}, None,
                 id="fault-no-image-file"),
    pytest.param(["bad-base64"], None, "InvalidResponseError", None, None, None, {1}, None,
                 id="fault-bad-base64"),
    pytest.param(["not-an-image"], None, "InvalidResponseError", None, None, None, {1}, None,
                 id="fault-not-an-image"),
    pytest.param(["truncated-image"], None, "InvalidResponseError", None, None, None, {1}, None,
                 id="fault-truncated-image"),
    pytest.param(["empty-200"], None, "InvalidResponseError", None, None, None, {1}, None,
                 id="fault-empty-200"),
]


@pytest.mark.parametrize(
    ("script", "always", "error", "status", "reason", "message", "attempts", "retryable"), ERROR_MATRIX
)
def test_fault_raises_its_typed_error(novita, stub, script, always, error, status, reason, message, attempts,
                                      retryable):
    stub.script(*script)
    stub.always(always)
    err, elapsed = raised(novita, stub)
    assert type(err) is getattr(novita, error)
    assert len(stub.requests) in attempts and elapsed < 20
    assert_sentence(err)
    if retryable is not None:
        assert err.retryable is retryable
    if status is not None:
        assert (err.status, err.reason) == (status, reason)
        assert err.request_id == stub.requests[-1].request_id
        if message is not None:
            assert err.message == message
    if (status, reason) == (422, "INVALID_REQUEST_BODY"):  # the reason decides, not the status
        assert err.kind == "request" and err.actor == novita.OWNER
    if len(stub.requests) > 1:  # a retry re-sends the very same request
        assert {r.body for r in stub.requests} == {stub.requests[0].body}


@pytest.mark.parametrize(("retry_after", "expected"), [(1, 1.0), (None, None)], ids=["header-1", "no-header"])
def test_rate_limit_error_carries_retry_after(novita, stub, retry_after, expected):
    stub.always(Fault("429", retry_after=retry_after) if retry_after else "429-no-retry-after")
    err, _ = raised(novita, stub)
    assert err.retry_after == expected


def test_long_retry_after_is_not_waited_for(novita, stub):
    stub.always(Fault("429", retry_after=120))
    err, elapsed = raised(novita, stub)
    assert type(err) is novita.RateLimitError and err.retry_after == 120
    assert elapsed < 60 and len(stub.requests) == 1  # far less than the 120 s asked for
    assert_sentence(err)


@pytest.mark.parametrize(
    ("script", "min_seconds"),
    [
        pytest.param(["503"], 0.0, id="fault-503-once-retried"),
    ],
)
def test_fault_once_is_retried_to_success(novita, stub, script, min_seconds):
    stub.script(*script)
    started = time.monotonic()
    result = call(novita, stub)
    elapsed = time.monotonic() - started
    assert sniff(result.image).format == "PNG"
    first, second = stub.requests
    assert first.body == second.body and first.headers["Authorization"] == second.headers["Authorization"]
    assert second.received_at - first.received_at >= min_seconds and elapsed < 30
    assert result.request_id == second.request_id


def test_read_timeout_is_not_retried(novita, stub):
    stub.always(Fault("timeout", delay=20))
    err, elapsed = raised(novita, stub, timeout=0.5)
    assert type(err) is novita.APITimeoutError and err.retryable
    assert len(stub.requests) == 1 and elapsed < 15  # gave up, did not wait for the 20 s answer
    assert_sentence(err)


def test_timeout_comes_from_the_environment(novita, stub, monkeypatch):
    monkeypatch.setenv("NOVITA_TIMEOUT", "0.5")
    stub.always(Fault("timeout", delay=20))
    err, elapsed = raised(novita, stub)
    assert type(err) is novita.APITimeoutError and elapsed < 15  # 0.5 s, not the default 120 s


def test_connection_refused_is_a_connection_error(novita, stub):
    err, elapsed = raised(novita, stub, base_url=f"http://127.0.0.1:{free_port()}")
    assert type(err) is novita.APIConnectionError and err.retryable
    assert elapsed < 10
    assert_sentence(err)


@pytest.mark.parametrize("key", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_missing_key_says_how_to_fix_it(novita, stub, monkeypatch, key):
    if key is not None:
        monkeypatch.setenv("NOVITA_API_KEY", key)
    err, _ = raised(novita, stub, api_key=None)
    assert type(err) is novita.ConfigurationError and not err.retryable
    assert err.kind == "no_key" and "NOVITA_API_KEY" in describe(err, owner_key=False)[0]
    assert stub.requests == []


def test_key_and_base_url_come_from_the_environment_at_call_time(novita, stub, monkeypatch):
    monkeypatch.setenv("NOVITA_API_KEY", KEY)
    monkeypatch.setenv("NOVITA_BASE_URL", stub.base_url + "/")
    novita.replace_background(PHOTO, "x")
    novita.replace_background(PHOTO, "x", api_key="sk_person_own_key")
    assert [r.headers["Authorization"] for r in stub.requests] == [f"Bearer {KEY}", "Bearer sk_person_own_key"]
    assert [r.path for r in stub.requests] == [PATH, PATH]


@pytest.fixture
def no_network(monkeypatch):
    """Record, and refuse, every attempt to resolve a name or open a connection."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use is forbidden in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize(
    "base_url",
    ["http://example.com", "http://192.168.1.20:8080", "http://10.0.0.5", "http://localhost.example.com",
     "http://127.0.0.1.nip.io"],
)
def test_plain_http_off_this_machine_is_refused_before_any_network(novita, stub, no_network, base_url):
    err, _ = raised(novita, stub, base_url=base_url)
    assert type(err) is novita.ConfigurationError
    assert no_network == [] and stub.requests == []
    assert_sentence(err)


def test_plain_http_base_url_from_the_environment_is_refused(novita, stub, no_network, monkeypatch):
    monkeypatch.setenv("NOVITA_BASE_URL", "http://example.com")
    err, _ = raised(novita, stub, base_url=None)
    assert type(err) is novita.ConfigurationError and no_network == []


@pytest.mark.parametrize(("timeout", "env"), [(0, None), (-1, None), (None, "soon"), (None, "0")])
def test_bad_timeout_is_a_configuration_error(novita, stub, monkeypatch, timeout, env):
    if env is not None:
        monkeypatch.setenv("NOVITA_TIMEOUT", env)
    err, _ = raised(novita, stub, timeout=timeout)
    assert type(err) is novita.ConfigurationError and stub.requests == []


@pytest.mark.parametrize(
    ("bind", "url_host"), [("127.0.0.1", "localhost"), ("127.0.0.2", "127.0.0.2"), ("::1", "[::1]")]
)
def test_plain_http_to_loopback_is_allowed(novita, stub, bind, url_host):
    with NovitaStub(host=bind, seed_retired=False) as local:
        port = local.base_url.rsplit(":", 1)[1]
        result = call(novita, local, base_url=f"http://{url_host}:{port}")
    assert sniff(result.image).format == "PNG" and len(local.requests) == 1


SECRET_SCENARIOS = {
    "fault-401": {"script": ["401"]},
    "fault-403-key": {"script": ["403-key"]},
    "fault-500": {"script": ["500"]},
    "fault-502": {"script": ["502"]},
    "fault-503-always": {"always": "503"},
    "fault-reset": {"script": ["reset"]},
    "fault-timeout": {"script": [Fault("timeout", delay=2)], "timeout": 0.5},
    "fault-bad-base64": {"script": ["bad-base64"]},
    "refused": {"base_url": "refused"},
    "plain-http": {"base_url": "http://example.com"},
}


@pytest.mark.parametrize("scenario", list(SECRET_SCENARIOS))
def test_key_never_shows_in_errors_or_logs(novita, stub, caplog, capfd, scenario):
    spec = dict(SECRET_SCENARIOS[scenario])
    stub.script(*spec.pop("script", []))
    stub.always(spec.pop("always", None))
    if spec.get("base_url") == "refused":
        spec["base_url"] = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    err, _ = raised(novita, stub, **spec)
    shown = [str(err), repr(err), *(describe(err, owner_key=o)[0] for o in (True, False)), *map(str, err.args),
             *traceback.format_exception(err)]
    shown += [caplog.text, *(r.getMessage() for r in caplog.records), *capfd.readouterr()]
    assert caplog.records or scenario == "plain-http"  # DEBUG logging really was on
    assert not [text for text in shown if KEY in text]


def test_key_never_shows_in_logs_on_success(novita, stub, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    call(novita, stub)
    assert caplog.records and KEY not in caplog.text


def test_concurrent_calls_keep_their_own_key_and_prompt(novita, stub):
    stub.latency = 0.2
    results: dict[int, object] = {}

    def run(i):
        results[i] = novita.replace_background(PHOTO, f"prompt {i}", api_key=f"{KEY}-{i}",
                                               base_url=stub.base_url)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(6))
    for r in stub.requests:
        assert r.headers["Authorization"] == f"Bearer {KEY}-{r.json['prompt'].split()[1]}"


def test_a_503_asking_for_a_long_wait_is_returned_at_once(novita, stub):
    """A proxy's maintenance page may ask for an hour: the person hears at once, nothing sleeps on it."""
    stub.always(Fault("503", retry_after=3600))
    started = time.monotonic()
    with pytest.raises(novita.ServerError):
        novita.replace_background(PHOTO, "x", api_key=KEY, base_url=stub.base_url)
    assert time.monotonic() - started < 60  # far less than the hour asked for
    assert len(stub.requests) == 1


@pytest.mark.parametrize("key", ["sk_…pasted", "sk_abc def", "sk_\u200bzero-width", "“sk_quoted”"])
def test_a_key_with_characters_no_key_has_gets_a_sentence(novita, stub, key):
    with pytest.raises(novita.ConfigurationError) as caught:
        novita.replace_background(PHOTO, "x", api_key=key, base_url=stub.base_url)
    assert "Paste the key again" in describe(caught.value, owner_key=False)[0]
    assert key not in str(caught.value)
    assert stub.requests == []
