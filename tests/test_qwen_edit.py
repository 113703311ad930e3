"""Qwen-Image Edit through the task API, against the loopback stand-in: the request, the image's encoding,
polling, the image link as untrusted input, failures, and the seed's retired call told as retired."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PIL import Image

from services import novita, remote_image
from tests.conftest import TEST_KEY, photo_bytes
from tests.novita_stub import EDIT_PATH, PATH, RESULT_PATH, Fault, NovitaStub


@pytest.fixture(autouse=True)
def fresh_form(monkeypatch):
    """Each test starts as a new process would: the image's encoding not yet learned."""
    monkeypatch.setattr(novita, "_form", {"use": novita.IMAGE_FORMS[0], "known": False})


@pytest.fixture
def env(novita_env, monkeypatch):
    monkeypatch.setenv("NOVITA_TIMEOUT", "20")
    novita_env.latency = 0.3
    return novita_env


def run(prompt="in a warehouse", image_type="png", data=None, **kwargs):
    submitted = novita.submit_edit(data or photo_bytes(), prompt, image_type)
    states = []
    result = novita.wait_for_edit(submitted.task_id, image_type, progress=states.append, **kwargs)
    return submitted, result, states


def edits(stub):
    return [r for r in stub.requests if r.path == EDIT_PATH]


def test_the_request_carries_the_instruction_the_image_the_seed_and_the_format(env):
    person = 'on a "marble" counter,\nsoft light — café ☕ \\ end.'
    submitted, result, states = run(person, "webp")
    (post,) = edits(env)
    body = post.json
    assert body["prompt"] == novita.EDIT_INSTRUCTION.format(prompt=person) == novita.edit_instruction(person)
    assert person in body["prompt"]  # carried inside unchanged
    assert body["output_format"] == "webp" and body["seed"] == -1
    assert post.edit.form == "data" and post.edit.format == "JPEG" and post.edit.size == (640, 480)
    assert post.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert result.image_type == "webp" and result.request_id == submitted.task_id
    w, h = result.decoded.size
    assert (w % 16, h % 16) == (0, 0) and (w, h) != (640, 480)  # the model's own size, fitted later
    assert {state.status for state in states} >= {"SUCCEED"}


def test_progress_is_reported_while_novita_works(env):
    env.latency = 4.0
    _, _, states = run()
    seen = [state.status for state in states]
    assert "PROCESSING" in seen and seen[-1] == "SUCCEED"
    assert all(0 <= (state.progress or 0) <= 100 for state in states)


def test_a_prompt_over_the_bound_is_refused_before_anything_is_sent(env):
    with pytest.raises(novita.PromptTooLongError) as caught:
        novita.submit_edit(photo_bytes(), "x" * 501, "png")
    assert caught.value.limit == 500 and not env.requests


@pytest.mark.parametrize("accepted, first", [({"raw"}, "data"), ({"data"}, "data")])
def test_the_image_is_sent_once_more_in_the_other_form_when_refused_and_the_form_is_remembered(env, accepted,
                                                                                             first, caplog):
    env.image_forms = accepted
    caplog.set_level("INFO", logger="services.novita")
    run()
    forms = [r.edit.form for r in edits(env)]
    assert forms[0] == first and forms[-1] in accepted
    assert len(forms) == (1 if first in accepted else 2)
    env.requests.clear()
    run()
    assert [r.edit.form for r in edits(env)] == [forms[-1]]  # learned for the process: no refused try again
    assert sum("Novita takes the image as" in r.message for r in caplog.records) == 1


def test_a_refusal_that_is_not_about_the_encoding_is_not_sent_again(env):
    env.script("ILLEGAL_PROMPT")
    with pytest.raises(novita.BadRequestError) as caught:
        novita.submit_edit(photo_bytes(), "x", "png")
    assert caught.value.kind == "prompt_refused" and len(edits(env)) == 1


def test_no_request_carries_the_key_to_the_image_link(env):
    run()
    fetches = env.image_fetches()
    assert fetches and all("Authorization" not in r.headers for r in fetches)
    assert all(TEST_KEY not in json.dumps(dict(r.headers)) for r in fetches)


@pytest.fixture
def elsewhere():
    """A second server on another loopback address: a forged link pointing there must never reach it."""
    try:
        other = NovitaStub(host="127.0.0.2").start()
    except OSError:
        pytest.skip("127.0.0.2 is not available on this machine")
    yield other
    other.stop()


def test_a_link_to_another_host_is_never_fetched(env, elsewhere):
    env.script(Fault("foreign-url", message=f"{elsewhere.base_url}/objects/stolen.png"))
    with pytest.raises(novita.UntrustedLinkError):
        run()
    assert not elsewhere.requests and not env.image_fetches()


def test_a_redirect_from_the_image_link_is_not_followed(env, elsewhere):
    env.script(Fault("redirect", at="image", message=f"{elsewhere.base_url}/objects/x.png"))
    with pytest.raises(novita.UntrustedLinkError):
        run()
    assert not elsewhere.requests


def test_an_image_over_30_mb_is_refused_without_reading_it_all(env):
    env.script(Fault("huge-image", at="image"), Fault("huge-image", at="image"))
    with pytest.raises(novita.InvalidResponseError):
        run()


def test_an_expired_link_gets_one_fresh_read(env):
    env.script("link-expired-once")
    _, result, _ = run()
    assert result.decoded is not None and len(env.image_fetches()) == 2


def test_a_link_still_dead_after_a_fresh_read_says_it_expired(env):
    env.script("link-expired")
    with pytest.raises(novita.LinkExpiredError):
        run()
    assert len(env.image_fetches()) == 2


def test_a_failed_task_carries_novitas_reason(env, caplog):
    env.script(Fault("task-failed", message="prompt flagged by content policy"))
    with pytest.raises(novita.TaskFailedError) as caught:
        run()
    assert caught.value.about_content and not caught.value.retryable  # the same words would be refused again
    assert any("content policy" in r.message for r in caplog.records)


def test_a_task_that_never_ends_gives_up_at_the_timeout_with_polls_bounded(env, monkeypatch):
    env.script("task-stuck")
    with pytest.raises(novita.TaskTimeoutError) as caught:
        run(timeout=4)
    assert caught.value.seconds == 4
    polls = env.polls()
    assert 1 <= polls <= 4  # after 1 s, then every 2.5 s
    assert len(edits(env)) == 1


def test_a_poll_that_fails_is_read_again_and_the_post_is_never_resent(env):
    env.script(Fault("500", at="poll"), Fault("reset", at="poll"))
    _, result, _ = run()
    assert result.decoded is not None
    assert len(edits(env)) == 1 and env.polls() >= 3


def test_polls_of_the_whole_process_are_spaced(monkeypatch):
    pacer = novita._Pacer(20.0)
    times, lock = [], threading.Lock()

    def poll():
        for _ in range(5):
            pacer.turn()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=poll) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    # 20 turns from 4 threads took at least 19 gaps of 1/rate: a busy machine only makes it longer (the time
    # each thread notes after its turn may lag, so single gaps are not compared)
    assert times[-1] - started >= 19 * 0.05 - 0.005


@pytest.mark.parametrize("fault, reason", [("MODEL_NOT_FOUND", "MODEL_NOT_FOUND"), ("410", None)])
def test_a_model_novita_no_longer_serves_is_told_as_retired(env, fault, reason):
    env.script(fault)
    with pytest.raises(novita.NotFoundError) as caught:
        novita.submit_edit(photo_bytes(), "x", "png")
    assert caught.value.kind == "retired" and caught.value.stops_key and caught.value.actor == novita.OWNER


@pytest.mark.parametrize("answer", ["retired", "404", "410", "API_NOT_FOUND"])
def test_the_seeds_retired_call_is_told_as_retired_never_as_a_wrong_address(env, answer):
    env.script(answer)
    with pytest.raises(novita.NotFoundError) as caught:
        novita.replace_background(photo_bytes(), "x", "png")
    error = caught.value
    assert error.kind == "retired"
    assert error.fix == "Novita retired this model on 2026-07-22; set NOVITA_MODEL=qwen-image-edit"


def test_the_seeds_call_still_works_where_a_gateway_serves_it(env):
    result = novita.replace_background(photo_bytes(), "x", "png")
    assert Image.open(__import__("io").BytesIO(result.image)).size == (640, 480)
    assert env.requests[0].path == PATH


def test_the_result_read_is_a_get_with_the_task_id(env):
    submitted, _, _ = run()
    polls = [r for r in env.requests if r.path.startswith(RESULT_PATH)]
    assert polls and all(r.method == "GET" and f"task_id={submitted.task_id}" in r.path for r in polls)


@pytest.mark.parametrize("url", [
    "http://203.0.113.9/x.png",  # plain http to a host that is not Novita's
    "https://127.0.0.1/x.png", "https://10.0.0.5/x.png", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/x.png", "https://192.168.1.1/x.png", "https://user:pw@8.8.8.8/x.png", "ftp://8.8.8.8/x",
    "https://localhost/x.png",
])
def test_links_that_name_a_private_or_plain_place_are_refused(url):
    with pytest.raises(remote_image.RefusedURL):
        remote_image.check_url(url, "https://api.novita.ai")


def test_https_to_a_public_address_and_novitas_own_origin_are_allowed():
    remote_image.check_url("https://8.8.8.8/bucket/x.png?X-Amz-Signature=abc", "https://api.novita.ai")
    remote_image.check_url("http://127.0.0.1:8765/objects/x.png", "http://127.0.0.1:8765")
    with pytest.raises(remote_image.RefusedURL):  # the same host on another port is not the same origin
        remote_image.check_url("http://127.0.0.1:9999/objects/x.png", "http://127.0.0.1:8765")


def test_a_name_that_connected_to_a_private_address_is_refused_before_its_body_is_read():
    """DNS rebinding: checked public, connected private. The peer of the real socket decides."""
    class Sock:
        def __init__(self, address):
            self.address = address

        def getpeername(self):
            return (self.address, 443)

    class Reply:
        def __init__(self, address):
            self.raw = type("Raw", (), {"_connection": type("Conn", (), {"sock": Sock(address)})()})()

    with pytest.raises(remote_image.RefusedURL):
        remote_image._check_peer(Reply("10.1.2.3"), "https://store.example/x.png")
    remote_image._check_peer(Reply("8.8.8.8"), "https://store.example/x.png")


def test_a_task_that_succeeded_without_an_image_ends_at_once_as_failed(env, monkeypatch):
    """An output filtered out comes back as SUCCEED with no image: no waiting out the timeout, no forged link."""
    real = novita._task_state

    def no_image(content):
        state = real(content)
        return state if state.status != "SUCCEED" else novita.TaskState("SUCCEED")

    monkeypatch.setattr(novita, "_task_state", no_image)
    started = time.monotonic()
    with pytest.raises(novita.TaskFailedError):
        run()
    assert time.monotonic() - started < 15 and not env.image_fetches()
