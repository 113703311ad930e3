"""Every way Novita (or the road to it) can fail, as a person sees it on the page, through AppTest.

Each case first makes one good result, then runs again into the fault, and checks the rules of the house:
a clear sentence (never exception text), the photo and prompt still there, the earlier result still in
history, a "Try again" only where retrying makes sense, the right number of requests (a paid POST is
re-sent automatically only where the server cannot have processed it), and the key nowhere on the page.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass, field

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, TEST_KEY, photo_bytes
from tests.novita_stub import Fault

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 30
FIRST_PROMPT = "on a marble kitchen counter, soft morning light"
SECOND_PROMPT = "in a snowy pine forest"
PHOTO_NAME = "mug.jpg"

# Text that must never reach a person: Python or HTTP-library internals.
LEAKS = re.compile(
    r"Traceback|Exception|Error\(|\w+Error\b|HTTPConnectionPool|Max retries|urllib3|requests\.|errno|"
    r"object at 0x|<html|File \"",
)
SENTENCE = re.compile(r"^[A-Z].{20,}[.!?”]$", re.S)


@dataclass(frozen=True)
class Case:
    id: str
    script: tuple[str | Fault, ...] = ()  # faults for the next requests, in order
    always: str | Fault | None = None  # fault for every request
    env: dict[str, str] = field(default_factory=dict)  # "DEAD_PORT" in a value is replaced by a closed port
    requests: int | tuple[int, int] = 1  # requests the stand-in receives for the failing run (exact or range)
    retry_offered: bool = False  # "Try again" button shown
    says: tuple[str, ...] = ()  # lower-case fragments the error sentence must hold
    succeeds: bool = False  # the automatic retry recovers: no error, one more result


CASES = [
    Case("fault-01-400-request-body-is-ours", script=("400",), says=("not your photo or prompt", "owner")),
    Case("fault-02-401", script=("401",), says=("key",)),
    Case("fault-03-403-invalid-key", script=("403-key",), says=("key",)),
    Case("fault-04-403-no-balance", script=("403-balance",), says=("out of credit", "owner")),
    # the seed's call (NOVITA_MODEL=replace-background) was retired: a 404 on it is the retirement
    Case("fault-05-404", script=("404",), says=("not available right now",)),
    Case("fault-06-413", script=("413",), says=("too large", "smaller photo")),
    Case("fault-07-429-retry-after-then-ok", script=(Fault("429", retry_after=1),), requests=2, succeeds=True),
    Case("fault-08-429-no-retry-after-always", always="429-no-retry-after", requests=(2, 4), retry_offered=True,
         says=("too many requests", "try again")),
    Case("fault-09-500", script=("500",), retry_offered=True, says=("engine failed", "try again")),
    Case("fault-10-502", script=("502",), retry_offered=True, says=("try again",)),
    Case("fault-11-503-once-retried-ok", script=("503",), requests=2, succeeds=True),
    Case("fault-12-503-always", always="503", requests=2, retry_offered=True,
         says=("overloaded", "try again")),
    Case("fault-13-504", script=("504",), retry_offered=True, says=("try again",)),
    Case("fault-14-read-timeout", script=(Fault("timeout", delay=3),), env={"NOVITA_TIMEOUT": "1"},
         retry_offered=True, says=("longer than 1 s", "try again")),
    Case("fault-15-connection-refused", env={"NOVITA_BASE_URL": "http://127.0.0.1:DEAD_PORT"}, requests=0,
         retry_offered=True, says=("could not reach novita", "try again")),
    Case("fault-16-connection-reset-mid-reply", script=("reset",), retry_offered=True,
         says=("connection broke", "try again")),
    Case("fault-17-200-html", script=("html-200",), retry_offered=True, says=("could not be read", "try again")),
    Case("fault-18-200-no-image-file", script=("no-image-file",), retry_offered=True,
         says=("could not be read", "try again")),
    Case("fault-19-200-bad-base64", script=("bad-base64",), retry_offered=True,
         says=("could not be read", "try again")),
    Case("fault-20-200-not-an-image", script=("not-an-image",), retry_offered=True,
         says=("could not be read", "try again")),
    Case("fault-21-400-no-balance", script=("BILLING_BALANCE_NOT_ENOUGH",), says=("out of credit", "owner")),
    Case("fault-22-illegal-prompt", script=("ILLEGAL_PROMPT",), says=("rephrase the prompt", "photo is fine")),
    Case("fault-23-error-inside-a-200", script=(Fault("BILLING_BALANCE_NOT_ENOUGH", in_200=True),),
         says=("out of credit", "owner")),
]


@pytest.fixture
def app(novita_env):
    # The shared key's limiter lives in st.cache_resource, process-wide: a 429 case holds it back for
    # every later test (and every other test file) unless it starts and ends fresh.
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    yield at
    st.cache_resource.clear()


def give_photo(at: AppTest, name: str = PHOTO_NAME, data: bytes | None = None) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data or photo_bytes(), "image/jpeg"))
    return at.run()


def replace(at: AppTest, prompt: str, fmt: str = "PNG") -> AppTest:
    at.text_area(key="prompt").input(prompt)
    at.radio(key="format").set_value(fmt)
    at.button(key="replace.run").click()
    return at.run()


def element_text(at: AppTest) -> str:
    """Every element of the page, main and sidebar, as its protobuf text: what the browser would receive."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def dead_port() -> int:
    """A loopback port where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def retry_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.key == "replace.retry"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault_as_a_person_sees_it(app, novita_env, monkeypatch, caplog, case: Case):
    caplog.set_level(logging.DEBUG)
    stub = novita_env

    # A good result first: it must survive whatever happens next.
    give_photo(app)
    replace(app, FIRST_PROMPT, "PNG")
    assert not app.exception and not app.error
    history = app.session_state["history"]
    assert len(history) == 1
    first = next(iter(history))
    before = len(stub.requests)

    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("DEAD_PORT", str(dead_port())))
    if case.script:
        stub.script(*case.script)
    if case.always is not None:
        stub.always(case.always)

    started = time.perf_counter()
    replace(app, SECOND_PROMPT, "WEBP")
    elapsed = time.perf_counter() - started

    # Never a crash, and everything the person gave is still there.
    assert not app.exception, app.exception
    photo = app.session_state["photo"]
    assert photo is not None and photo.name == PHOTO_NAME
    assert app.text_area(key="prompt").value == SECOND_PROMPT
    assert app.radio(key="format").value == "WEBP"
    assert not app.session_state["replace.page"].run or app.session_state["replace.page"].run.finished
    assert elapsed < 60, f"the failing run took {elapsed:.1f} s"  # a hang would be the 120 s default timeout

    sent = len(stub.requests) - before
    if isinstance(case.requests, tuple):
        low, high = case.requests
        assert low <= sent <= high, f"{sent} requests"
    else:
        assert sent == case.requests, f"{sent} requests, expected {case.requests}"
    if sent:  # a retry re-sends the same paid request, never a different one
        bodies = {r.body for r in stub.requests[before:]}
        assert len(bodies) == 1

    history = app.session_state["history"]
    if case.succeeds:
        assert not app.error, [e.value for e in app.error]
        assert not retry_buttons(app)
        assert [i.prompt for i in history] == [SECOND_PROMPT, FIRST_PROMPT]
        assert next(iter(history)).image_type == "webp"
        if case.id.startswith("fault-07"):  # Retry-After: 1 was honoured
            first_try, second_try = stub.requests[before:]
            assert second_try.received_at - first_try.received_at >= 0.9
    else:
        assert [i.id for i in history] == [first.id], "history changed"
        errors = [e.value for e in app.error]
        assert len(errors) == 1, errors
        message = errors[0]
        assert SENTENCE.match(message), f"not a clear sentence: {message!r}"
        assert not LEAKS.search(message), f"internals on the page: {message!r}"
        for fragment in case.says:
            assert fragment in message.lower(), f"{fragment!r} not in {message!r}"
        assert bool(retry_buttons(app)) is case.retry_offered, f"Try again offered: {bool(retry_buttons(app))}"
        if case.retry_offered:
            assert retry_buttons(app)[0].label == "Try again"

    # The earlier result is still on offer: the slider and a Download button are on the page.
    downloads = [b.proto.label for b in app.get("download_button")]
    assert any(label.startswith("Download") for label in downloads)

    page = element_text(app)
    assert "Traceback" not in page
    assert TEST_KEY not in page
    assert TEST_KEY not in caplog.text


def test_matrix_is_complete():
    """The ids count 01..23 with no gap, so the matrix stays visible in the test report."""
    numbers = [int(c.id.split("-")[1]) for c in CASES]
    assert numbers == list(range(1, len(CASES) + 1)) and len(CASES) == 23
