"""Novita's published error table for image APIs, row by row: each reason the loopback stand-in answers with
becomes the right typed error, names who must act, and reads as a sentence that never blames the wrong
thing. Then what follows an owner-side refusal: no request reaches Novita on the owner's key until the
pause ends, in this process and, through a real Redis, in another replica."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
import uuid

import pytest
from PIL import Image

from components.messages import describe
from services import budget, images, jobs, novita, quota
from tests.novita_stub import DOCUMENTED_ERRORS, Fault
from tests.test_quota import redis_url  # noqa: F401 - a real redis-server for the shared pause

pytestmark = pytest.mark.timeout(60)

OWNER_KEY = "sk_owner_0123456789abcdef"
OWN_KEY = "sk_person_fedcba9876543210"

# (reason, status, class, who must act, fragments the sentence holds on the owner's key, on a pasted key)
# as ../shared/NOVITA_API.md lists them; "photo"/"prompt" blame is checked separately below.
TABLE = [
    ("INVALID_REQUEST_BODY", 400, "BadRequestError", "owner", ["not your photo or prompt", "owner"], ["not your photo"]),
    ("IMAGE_FILE_EXCEEDS_MAX_SIZE", 400, "BadRequestError", "person", ["smaller photo"], ["smaller photo"]),
    ("INVALID_IMAGE_FORMAT", 400, "BadRequestError", "person", ["jpeg or png"], ["jpeg or png"]),
    ("IMAGE_EXCEEDS_MAX_RESOLUTION", 400, "BadRequestError", "person", ["smaller photo"], ["smaller photo"]),
    ("INVALID_IMAGE_SIZE", 400, "BadRequestError", "person", ["smaller photo"], ["smaller photo"]),
    ("ILLEGAL_PROMPT", 400, "BadRequestError", "person", ["rephrase the prompt", "photo is fine"],
     ["rephrase the prompt"]),
    ("ILLEGAL_IMAGE_CONTENT", 400, "BadRequestError", "person", ["refused this photo", "prompt is fine"],
     ["another photo"]),
    ("BILLING_BALANCE_NOT_ENOUGH", 400, "InsufficientBalanceError", "owner",
     ["out of credit", "owner has been told", "nothing you change"], ["your novita account has no credit"]),
    ("MISSING_API_KEY", 400, "BadRequestError", "owner", ["not your photo or prompt"], ["not your photo"]),
    ("INVALID_API_KEY", 403, "AuthenticationError", "owner", ["key was refused", "replace it"],
     ["did not accept your api key"]),
    ("API_NOT_ALLOWED", 403, "PermissionDeniedError", "owner", ["not allowed", "enable it"],
     ["not allowed", "enable it"]),
    ("NEED_REAL_NAME_VERIFY", 403, "PermissionDeniedError", "owner", ["verification"], ["verification"]),
    ("BILLING_AUTH_FAILED", 403, "PermissionDeniedError", "owner", ["billing"], ["billing"]),
    ("API_NOT_FOUND", 404, "NotFoundError", "owner", ["wrong novita address"], ["wrong novita address"]),
    ("MODEL_NOT_FOUND", 404, "NotFoundError", "owner", ["not available right now", "owner has been told"],
     ["not available right now"]),
    ("RATE_LIMIT_EXCEEDED", 429, "RateLimitError", "person", ["too many requests", "try again"],
     ["too many requests"]),
    ("BILLING_FAILED", 500, "ServerError", "person", ["try again"], ["try again"]),
    ("TASK_FAILED", 500, "ServerError", "person", ["try again"], ["try again"]),
    ("CREATE_TASK_FAILED", 500, "ServerError", "person", ["try again"], ["try again"]),
    # the spellings of Novita's LLM APIs are understood too
    ("NOT_ENOUGH_BALANCE", 403, "InsufficientBalanceError", "owner", ["out of credit"], ["no credit left"]),
    ("FAILED_TO_AUTH", 401, "AuthenticationError", "owner", ["key was refused"], ["did not accept your api key"]),
]
OWNER_SIDE = {"BILLING_BALANCE_NOT_ENOUGH", "INVALID_API_KEY", "API_NOT_ALLOWED", "NEED_REAL_NAME_VERIFY",
              "BILLING_AUTH_FAILED", "NOT_ENOUGH_BALANCE", "FAILED_TO_AUTH"}


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buf, "PNG")
    return buf.getvalue()


PHOTO = _photo()


def test_every_documented_reason_has_a_row_and_a_case():
    assert {row[0] for row in TABLE} == set(DOCUMENTED_ERRORS) <= set(novita.BY_REASON)


# Since Novita retired the seed's call, a 404 on it is the retirement, whatever reason it names.
RETIRED = ("NotFoundError", "owner", ["not available right now"], ["not available right now"])
CALLS = {
    "edit": lambda stub: novita.submit_edit(PHOTO, "in a warehouse", "png", api_key=OWNER_KEY, base_url=stub.base_url),
    "seed": lambda stub: novita.replace_background(PHOTO, "in a warehouse", api_key=OWNER_KEY, base_url=stub.base_url),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("reason", "status", "cls", "actor", "on_owner", "on_own"), TABLE, ids=[r[0] for r in TABLE])
def test_each_reason_is_its_error_and_its_sentence(stub, monkeypatch, call, reason, status, cls, actor, on_owner,
                                                   on_own):
    monkeypatch.setattr(novita, "RETRY", novita.RETRY.new(status_forcelist=()))  # one answer, as it came
    monkeypatch.setattr(novita, "_form", {"use": "data", "known": True})  # no resend in the other image form
    novita._session.cache_clear()
    if call == "seed" and status == 404:
        cls, actor, on_owner, on_own = RETIRED
    stub.script(reason)
    try:
        with pytest.raises(novita.APIStatusError) as caught:
            CALLS[call](stub)
    finally:
        novita._session.cache_clear()
    err = caught.value
    assert type(err).__name__ == cls
    assert (err.status, err.reason, err.actor) == (status, reason, actor)
    assert err.message == DOCUMENTED_ERRORS[reason][2] and err.request_id == stub.requests[-1].request_id
    assert err.stops_key is (reason in OWNER_SIDE or err.kind == "retired")
    for owner_key, fragments in ((True, on_owner), (False, on_own)):
        sentence, retry = describe(err, owner_key=owner_key)
        low = sentence.lower()
        assert sentence[0].isupper() and sentence.rstrip()[-1] in ".”" and "\n" not in sentence
        assert all(f in low for f in fragments), (owner_key, sentence)
        assert OWNER_KEY not in sentence and reason not in sentence
        if reason in OWNER_SIDE or actor == "owner":
            # never the person's photo or prompt, and never a wrong key unless the key is what is wrong
            assert "change the prompt" not in low and "try another photo" not in low
            assert not retry
        if reason in OWNER_SIDE - {"INVALID_API_KEY", "FAILED_TO_AUTH"}:
            assert "key was refused" not in low and "did not accept" not in low
        if owner_key and reason in OWNER_SIDE:
            assert "owner" in low
        if not owner_key and reason in OWNER_SIDE:
            assert "owner has been told" not in low


def test_an_unknown_reason_falls_back_to_its_status(stub):
    stub.script(Fault("500", status=400, message="something new"))
    with pytest.raises(novita.BadRequestError) as caught:
        novita.replace_background(PHOTO, "x", api_key=OWNER_KEY, base_url=stub.base_url)
    assert caught.value.kind == "refused" and caught.value.actor == novita.PERSON
    assert "something new" in describe(caught.value, owner_key=True)[0]


def test_an_error_inside_a_200_is_that_error(stub):
    stub.script(Fault("BILLING_BALANCE_NOT_ENOUGH", in_200=True))
    with pytest.raises(novita.InsufficientBalanceError) as caught:
        novita.replace_background(PHOTO, "x", api_key=OWNER_KEY, base_url=stub.base_url)
    assert (caught.value.status, caught.value.reason) == (400, "BILLING_BALANCE_NOT_ENOUGH")


# --- 503: re-sent once when it came back quickly, never after a long wait ------------------------------

def test_a_quick_503_is_sent_once_more(stub):
    stub.script("503")
    novita.replace_background(PHOTO, "x", api_key=OWNER_KEY, base_url=stub.base_url)
    assert len(stub.requests) == 2


# A quick 503 comes back over loopback in milliseconds, far inside QUICK even on a busy machine; a slow one
# is held by the stand-in for SLOW, past QUICK whatever the load.
QUICK, SLOW = 1.0, 1.5


def test_a_503_after_a_long_wait_is_not_sent_again(stub, monkeypatch):
    """A gateway that gave up after a long wait may leave the generation running (and charged) behind it."""
    monkeypatch.setattr(novita, "SERVICE_UNAVAILABLE_RETRY_WITHIN", QUICK)
    stub.script(Fault("503", delay=SLOW))
    with pytest.raises(novita.ServerError):
        novita.replace_background(PHOTO, "x", api_key=OWNER_KEY, base_url=stub.base_url)
    assert len(stub.requests) == 1


# --- the pause after an owner-side refusal -------------------------------------------------------------

def _prepared() -> images.PreparedImage:
    return images.prepare(PHOTO, "mug.png")


def _ledger(limiter) -> budget.Ledger:
    return budget.Ledger(limiter, daily_limit=1000)


def _send(limiter, key, *, owner_key, base_url):
    return jobs.send(_prepared(), "in a warehouse", "png", engine="novita", api_key=key, ledger=_ledger(limiter),
                     owner_key=owner_key)


PAUSE = 60.0  # seconds: the owner's pause; it ends in these tests by moving the limiter's clock, not by waiting


class _Later:
    """The `time` module as services.quota sees it, moved forward on demand: to look past a pause without
    waiting for it."""

    def __init__(self) -> None:
        self.shift = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.shift

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def env(monkeypatch, stub):
    monkeypatch.setenv("NOVITA_BASE_URL", stub.base_url)
    monkeypatch.setenv("NOVITA_OWNER_PAUSE_SECONDS", str(PAUSE))
    return stub


@pytest.mark.parametrize("reason", sorted(OWNER_SIDE))
def test_after_an_owner_side_refusal_nothing_is_sent_on_the_owners_key_until_the_pause_ends(env, caplog, monkeypatch,
                                                                                           reason):
    caplog.set_level(logging.WARNING)
    later = _Later()
    monkeypatch.setattr(quota, "time", later)
    limiter = quota.MemoryLimiter(100, 60)
    env.script(reason)
    with pytest.raises(novita.APIStatusError):
        _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert len(env.posts()) == 1
    for _ in range(3):  # every session of the process is held back, without a request
        with pytest.raises(quota.Suspended) as caught:
            _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert len(env.posts()) == 1
    assert "paused for everyone" in describe(caught.value, owner_key=True)[0]
    assert any(novita.BY_REASON[reason].fix in r.getMessage() for r in caplog.records)
    assert OWNER_KEY not in caplog.text
    # a key a person pasted is not held back by the owner's pause
    _send(limiter, OWN_KEY, owner_key=False, base_url=env.base_url)
    assert len(env.posts()) == 2
    later.shift = PAUSE - 5.0  # still within the pause (seconds of room for a slow machine)
    with pytest.raises(quota.Suspended):
        _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    later.shift = PAUSE + 1.0  # the pause is over
    _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert len(env.posts()) == 3


def test_a_refusal_on_a_pasted_key_pauses_nothing(env):
    limiter = quota.MemoryLimiter(100, 60)
    env.script("BILLING_BALANCE_NOT_ENOUGH")
    with pytest.raises(novita.InsufficientBalanceError):
        _send(limiter, OWN_KEY, owner_key=False, base_url=env.base_url)
    _send(limiter, OWN_KEY, owner_key=False, base_url=env.base_url)
    _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert len(env.posts()) == 3


def test_a_person_side_refusal_pauses_nothing(env):
    limiter = quota.MemoryLimiter(100, 60)
    env.script("ILLEGAL_PROMPT")
    with pytest.raises(novita.BadRequestError):
        _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    _send(limiter, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert len(env.posts()) == 2


def test_a_waiting_run_is_not_sent_when_the_pause_begins_while_it_waits(env):
    limiter = quota.MemoryLimiter(1, 60)
    bucket = quota.bucket_for(OWNER_KEY)
    assert limiter.acquire(bucket)  # the minute's only slot is taken: the next run waits in line
    outcome: list[BaseException] = []
    waiting = threading.Event()

    def run():
        try:
            jobs.send(_prepared(), "x", "png", engine="novita", api_key=OWNER_KEY, ledger=_ledger(limiter),
                      owner_key=True,
                      progress=lambda **report: report.get("waiting") and waiting.set())
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is checked
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert waiting.wait(5)
    limiter.suspend(bucket, 5, "balance")
    limiter.penalize(bucket, 0)  # wakes the line; the pause must still hold the run back
    limiter._grants.clear()  # the slot comes free while the pause runs
    worker.join(10)
    assert outcome and isinstance(outcome[0], quota.Suspended)
    assert env.posts() == []


def test_the_pause_reaches_another_replica_through_redis(env, redis_url):  # noqa: F811
    prefix = f"test:{uuid.uuid4().hex}:"
    first = quota.RedisLimiter(redis_url, 100, 60, prefix=prefix)
    second = quota.RedisLimiter(redis_url, 100, 60, prefix=prefix)
    env.script("API_NOT_ALLOWED")
    with pytest.raises(novita.PermissionDeniedError):
        _send(first, OWNER_KEY, owner_key=True, base_url=env.base_url)
    with pytest.raises(quota.Suspended) as caught:
        _send(second, OWNER_KEY, owner_key=True, base_url=env.base_url)
    assert caught.value.kind == "access" and PAUSE - 30 < caught.value.seconds_left <= PAUSE
    assert len(env.posts()) == 1


# --- what an image counts for when the call failed ------------------------------------------------------

def _spent_after(monkeypatch, stub, *, base_url=None, fault=None) -> budget.Account:
    """Send once on the owner's key through a ledger and return the session's account afterwards."""
    monkeypatch.setenv("NOVITA_BASE_URL", base_url or stub.base_url)
    if fault is not None:
        stub.script(fault)
    account = budget.Account(cap=5)
    ledger = budget.Ledger(quota.MemoryLimiter(100, 60), daily_limit=100)
    with pytest.raises(novita.NovitaError):
        jobs.send(_prepared(), "x", "png", engine="novita", api_key=OWNER_KEY, ledger=ledger, account=account,
                  owner_key=True, cost=0.03)
    assert account.owner_held == 0  # every reservation ends spent or released
    return account


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_costs_no_image(monkeypatch, stub):
    account = _spent_after(monkeypatch, stub, base_url=f"http://127.0.0.1:{_closed_port()}")
    assert (account.owner_spent, account.images, account.spend) == (0, 0, 0.0)


def test_a_reply_broken_midway_counts_as_spent(monkeypatch, stub):
    account = _spent_after(monkeypatch, stub, fault="reset")
    assert (account.owner_spent, account.images) == (1, 1)


def test_a_quick_503_costs_no_image_but_a_slow_one_counts(monkeypatch, stub):
    monkeypatch.setattr(novita, "SERVICE_UNAVAILABLE_RETRY_WITHIN", QUICK)
    stub.always("503")  # refused quickly twice: the re-send too
    quick = _spent_after(monkeypatch, stub)
    assert quick.owner_spent == 0
    stub.always(Fault("503", delay=SLOW))  # a gateway that gave up after a long wait
    slow = _spent_after(monkeypatch, stub)
    assert slow.owner_spent == 1
