"""Who may use the owner's key and what it costs: the password gate, the per-session cap, the spend
figures, waiting in line for the shared key, and the owner-key refusals — through Streamlit's AppTest
against the loopback stand-in.

Everything the browser would receive is captured (every ForwardMsg the script enqueues), so "never shown"
is checked on the bytes that would leave the server, not only on the parsed element tree.
"""

from __future__ import annotations

import time

import pytest
import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Navigation_pb2 import Navigation
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import parse_tree_from_messages

from components.messages import describe
from services import jobs, novita
from tests.conftest import ROOT, TEST_KEY, photo_bytes

TIMEOUT = 30
PASSWORD = "correct horse battery staple"
OWN_KEY = "sk_my_own_key_987"


# --- helpers ------------------------------------------------------------------------------------------

@pytest.fixture
def sent(monkeypatch) -> list[ForwardMsg]:
    """Every message the app would send to the browser during this test, in order."""
    messages: list[ForwardMsg] = []
    enqueue = ForwardMsgQueue.enqueue

    def recording_enqueue(self, msg):
        copy = ForwardMsg()
        copy.CopyFrom(msg)
        messages.append(copy)
        return enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recording_enqueue)
    return messages


def new_app() -> AppTest:
    st.cache_resource.clear()  # the process-wide limiter is rebuilt from this test's settings
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def give_photo(at: AppTest) -> AppTest:
    at.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg"))
    return at.run()


def replace(at: AppTest, prompt="in a warehouse", **run) -> AppTest:
    at.text_area(key="prompt").input(prompt)
    at.button(key="replace.run").click()
    return at.run(**run)


def run_until_in_line(at: AppTest, sent: list[ForwardMsg], prompt: str, monkeypatch) -> None:
    """Press Replace background and let the page run until it has drawn its photo waiting in line, then stop
    it as a browser's next interaction would (a waiting run never ends by itself). Raises the RuntimeError
    AppTest raises for a run stopped unfinished; a page that never shows the line runs out TIMEOUT instead."""
    from streamlit.testing.v1 import local_script_runner

    def until_in_line(runner, timeout=3):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.01)
            if runner.script_stopped():
                return
            if any("in line" in label for label in status_labels(list(sent))):
                runner.request_stop()
                runner.join()
                raise RuntimeError("stopped once the page showed its photo waiting in line")
        runner.request_stop()
        runner.join()
        raise RuntimeError(f"the page never showed a photo waiting in line within {TIMEOUT} s")

    with monkeypatch.context() as patch:
        patch.setattr(local_script_runner, "require_widgets_deltas", until_in_line)
        replace(at, prompt)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def shown_anywhere(sent: list[ForwardMsg], secret: str) -> bool:
    """True if `secret` is in any byte sent to the browser (labels, values, markdown, page config...)."""
    needle = secret.encode()
    return any(needle in m.SerializeToString() for m in sent)


def status_labels(sent: list[ForwardMsg]) -> list[str]:
    """Every label an st.status block was drawn or updated with."""
    return [m.delta.add_block.expandable.label for m in sent
            if m.HasField("delta") and m.delta.WhichOneof("type") == "add_block"
            and m.delta.add_block.HasField("expandable")]


def assert_only_the_gate(at: AppTest) -> None:
    kinds = {type(node).__name__ for node in at.main} - {"SpecialBlock"}
    assert kinds <= {"Title", "TextInput", "Caption", "Error"}, kinds
    assert [t.key for t in at.text_input] == ["gate.password"]
    field = at.text_input(key="gate.password")
    assert field.proto.type == TextInputProto.PASSWORD and field.value == ""
    assert at.title and (at.caption or at.error)
    assert not at.file_uploader and not at.text_area and not at.radio and not at.button
    assert not list(at.sidebar.children.values())  # no engine choice, no key field, no tally


# --- the password gate --------------------------------------------------------------------------------

def test_with_app_password_only_the_gate_shows_until_the_right_password(novita_env, monkeypatch, sent):
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    at = new_app().run()
    assert not at.exception
    assert_only_the_gate(at)
    assert "password" in texts(at.caption).lower()
    # the router's own navigation is hidden behind the gate
    navigation = [m.navigation for m in sent if m.WhichOneof("type") == "navigation"]
    assert navigation and navigation[-1].position == Navigation.Position.HIDDEN

    started = time.monotonic()
    for guess in ("open sesame", "letmein please", "hunter2 again"):
        at.text_input(key="gate.password").input(guess).run()
        assert not at.exception
        assert "not right" in texts(at.error)
        assert_only_the_gate(at)
    # each wrong answer pushes the next check back, 0.5 s then 1 s: the third came at least 1.5 s after the
    # first (a lower bound, so a busy machine cannot break it)
    assert time.monotonic() - started >= 1.5

    at.text_input(key="gate.password").input(PASSWORD).run()
    assert not at.exception and not at.error
    assert at.file_uploader(key="upload").label == "Photo"
    assert at.text_area(key="prompt").label == "Prompt"
    assert at.radio(key="format").options == ["PNG", "WEBP", "JPEG"]
    assert at.button(key="replace.run").label == "Replace background"
    assert at.radio(key="engine_preference").label == "Engine"  # the sidebar is there now
    assert not [t for t in at.text_input if t.key == "gate.password"]
    assert at.session_state["gate.password"] == ""  # the field was cleared, never sent back
    for secret in (PASSWORD, "open sesame", "letmein please", "hunter2 again"):
        assert not shown_anywhere(sent, secret), secret

    # it stays open for this session
    at.run()
    assert at.text_area(key="prompt") and not at.error


VIEWS = sorted(p.name for p in (ROOT / "views").glob("*.py"))


@pytest.mark.parametrize("page", VIEWS or ["(no page found in views/)"])  # an empty list would skip, not fail
def test_no_page_can_be_reached_around_the_gate(novita_env, monkeypatch, page):
    monkeypatch.setenv("APP_PASSWORD", PASSWORD)
    at = new_app().run()
    at.switch_page(f"views/{page}").run()  # as a link straight to that page would
    assert not at.exception
    assert_only_the_gate(at)


def test_without_app_password_the_app_opens_directly(novita_env):
    at = new_app().run()
    assert not at.exception
    assert not [t for t in at.text_input if t.key == "gate.password"]
    assert at.file_uploader(key="upload") and at.text_area(key="prompt") and at.button(key="replace.run")
    assert at.radio(key="engine_preference")


# --- the per-session cap on the owner's key ----------------------------------------------------------

def test_session_cap_stops_novita_but_the_offline_studio_still_works(novita_env, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_SESSION", "1")
    at = give_photo(new_app().run())
    replace(at, "in a warehouse")
    assert not at.exception and not at.error
    assert len(at.session_state["history"]) == 1 and at.session_state["account"].images == 1

    replace(at, "on a sunny beach at sunset")
    assert not at.exception
    warning = texts(at.warning)
    assert "allows 1 Novita image" in warning and "offline studio" in warning
    assert len(novita_env.posts()) == 1
    assert len(at.session_state["history"]) == 1

    at.radio(key="engine_preference").set_value("offline").run()
    replace(at, "on a sunny beach at sunset")
    assert not at.exception and not at.error and not at.warning
    history = list(at.session_state["history"])
    assert len(history) == 2 and history[0].engine == "offline"
    assert len(novita_env.posts()) == 1  # nothing more went to Novita
    assert at.session_state["account"].images == 1


def test_images_made_with_ones_own_key_do_not_use_up_the_owners_cap(novita_env, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_SESSION", "1")
    at = give_photo(new_app().run())
    at.text_input(key="key_field").input(OWN_KEY).run()
    replace(at, "in a warehouse")
    assert novita_env.posts()[-1].headers["Authorization"] == f"Bearer {OWN_KEY}"
    at.button(key="forget_key").click().run()
    replace(at, "on a sunny beach at sunset")  # the owner's key has made nothing for this session yet
    assert not at.warning and not at.error
    assert len(novita_env.posts()) == 2
    assert novita_env.posts()[-1].headers["Authorization"] == f"Bearer {TEST_KEY}"


# --- spend figures -----------------------------------------------------------------------------------

def test_spend_and_the_keys_budget_show_in_the_sidebar(novita_env, monkeypatch):
    monkeypatch.setenv("NOVITA_PRICE_PER_IMAGE", "0.05")
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "5")
    at = give_photo(new_app().run())
    assert "5 of 5" in texts(at.sidebar.caption)
    replace(at, "in a warehouse")
    replace(at, "on a marble kitchen counter")
    assert not at.exception and not at.error
    assert at.session_state["account"].images == 2
    assert at.session_state["account"].spend == pytest.approx(0.10)
    tally = texts(at.sidebar.caption)
    assert "2 Novita images" in tally and "$0.10" in tally
    assert "3 of 5" in tally
    assert len(novita_env.posts()) == 2


# --- waiting in line for the shared key --------------------------------------------------------------

def test_a_run_over_the_budget_waits_in_line_then_succeeds(novita_env, monkeypatch, sent):
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_SECONDS", "3")
    at = give_photo(new_app().run())
    replace(at, "in a warehouse")
    assert len(at.session_state["history"]) == 1
    sent.clear()
    replace(at, "on a sunny beach at sunset")
    assert not at.exception and not at.error
    assert len(at.session_state["history"]) == 2
    first, second = novita_env.posts()
    # it waited for the 3 s window (loosely: the trip to the stand-in varies on a busy machine; without the
    # limiter the gap is a fraction of a second)
    assert second.received_at - first.received_at >= 2.5
    waiting = [label for label in status_labels(sent) if "in line" in label]
    assert waiting, status_labels(sent)
    assert "1st in line" in waiting[0] and "about" in waiting[0]


def test_cancel_while_waiting_sends_nothing(novita_env, monkeypatch, sent):
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_SECONDS", "30")  # the slot cannot free up during this test
    at = give_photo(new_app().run())
    replace(at, "in a warehouse")
    assert len(at.session_state["history"]) == 1

    # The waiting run never finishes by itself within the timeout: AppTest stops it as a browser's
    # next interaction would, and what it had drawn so far is the page the person sees.
    sent.clear()
    with pytest.raises(RuntimeError, match="stopped once the page showed its photo waiting in line"):
        run_until_in_line(at, sent, "on a sunny beach at sunset", monkeypatch)
    assert any("in line" in label for label in status_labels(sent)), status_labels(sent)
    run = at.session_state["replace.page"].run
    assert run is not None and not run.finished

    page = parse_tree_from_messages(sent)
    page._runner = at  # click on the page as it was drawn while waiting
    at._tree = page
    cancel = at.button(key="replace.cancel")
    assert cancel.label == "Cancel"
    cancel.click().run()

    assert not at.exception and not at.error
    assert "nothing was sent" in texts(at.info)
    assert run.finished and isinstance(run.tasks[0].error, jobs.Cancelled)  # its work is over: it never sends
    assert len(novita_env.posts()) == 1
    assert len(at.session_state["history"]) == 1
    assert at.session_state["photo"].name == "mug.jpg"
    assert at.text_area(key="prompt").value == "on a sunny beach at sunset"


def test_sessions_share_the_keys_budget_and_each_sees_its_place_in_line(novita_env, monkeypatch, sent):
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_SECONDS", "30")
    first = give_photo(new_app().run())  # clears st.cache_resource once: the three sessions share one limiter
    replace(first, "in a warehouse")
    assert len(first.session_state["history"]) == 1

    waiting = []
    for place in ("1st", "2nd"):
        session = give_photo(AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run())
        assert "0 of 1" in texts(session.sidebar.caption)  # the first session's image counts for everyone
        sent.clear()
        with pytest.raises(RuntimeError, match="stopped once the page showed its photo waiting in line"):
            run_until_in_line(session, sent, "on a sunny beach at sunset", monkeypatch)
        labels = [label for label in status_labels(sent) if "in line" in label]
        assert labels and all(f"{place} in line" in label for label in labels), labels
        waiting.append(session.session_state["replace.page"].run)
    # the estimate grows with the place in line: a whole window more for the second
    assert waiting[1].tasks[0].waiting[1] > waiting[0].tasks[0].waiting[1] + 20

    for run in waiting:
        run.cancel_rest()
    deadline = time.monotonic() + 20
    while not all(run.finished for run in waiting) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(run.finished and isinstance(run.tasks[0].error, jobs.Cancelled) for run in waiting)
    assert len(novita_env.posts()) == 1


# --- refusals of the owner's key ---------------------------------------------------------------------

def test_owner_key_refusals_say_whose_problem_it_is_and_no_key_is_ever_shown(novita_env, sent):
    at = give_photo(new_app().run())

    novita_env.script("BILLING_BALANCE_NOT_ENOUGH")
    replace(at, "in a warehouse")
    assert not at.exception
    error = texts(at.error)
    assert "out of credit" in error and "owner has been told" in error and "offline studio" in error
    assert "prompt" not in error.replace("photo and prompt are fine", "")

    # the owner's key is paused for everyone: the page says so before anyone presses the button, Automatic
    # makes the next result offline, and an explicit Novita run gets the sentence; nothing more is sent
    assert "paused" in texts(at.sidebar.warning) and "paused for everyone" in texts(at.warning)
    replace(at, "in a warehouse")
    assert not at.error and next(iter(at.session_state["history"])).engine == "offline"
    at.radio(key="engine_preference").set_value("novita").run()
    replace(at, "in a warehouse")
    assert "paused for everyone" in texts(at.error) and "out of credit" in texts(at.error)
    assert len(novita_env.posts()) == 1
    at.radio(key="engine_preference").set_value("auto").run()

    # with the person's own key, the same refusal is theirs to fix, and the owner's pause does not apply
    at.text_input(key="key_field").input(OWN_KEY).run()
    assert at.session_state["user_api_key"] == OWN_KEY and at.session_state["key_field"] == ""
    assert "your own Novita key" in texts(at.sidebar.success)
    novita_env.script("403-balance")
    replace(at, "in a warehouse")
    assert novita_env.posts()[-1].headers["Authorization"] == f"Bearer {OWN_KEY}"
    error = texts(at.error)
    assert "Your Novita account has no credit left" in error
    assert "owner" not in error and "paused" not in error

    novita_env.script("403-key")
    replace(at, "in a warehouse")
    assert "did not accept your API key" in texts(at.error)

    assert len(novita_env.posts()) == 3
    assert len(at.session_state["history"]) == 1  # the offline result made during the pause
    for secret in (TEST_KEY, OWN_KEY):
        assert not shown_anywhere(sent, secret), "an API key reached the browser"


# --- the owner's budget across pages and sessions ------------------------------------------------------

def _press_all_three() -> None:
    """One session presses Replace background, Make variants and Replace all backgrounds while the others
    still run, as a person with three tabs of the same session (or quick page switches) can."""
    import time as _time

    import streamlit as st

    from components import actions, session
    from tests.conftest import Upload, photo_bytes

    session.init()
    if "runs" in st.session_state:
        return
    session.set_photo("mug.jpg", photo_bytes(), "upload")
    st.session_state["prompt"] = "in a warehouse"
    for i in range(2):
        st.session_state[f"variants.prompt{i}"] = f"idea {i}"
    st.session_state["batch.upload"] = [Upload(f"p{i}.jpg", photo_bytes(colour=(60 * i, 90, 90))) for i in range(2)]
    st.session_state["batch.prompt"] = "on a beach"
    for name in ("variants", "batch", "replace"):
        actions.start(name)
    runs = [session.page(name).run for name in ("variants", "batch", "replace")]
    st.session_state["runs"] = runs
    st.session_state["messages"] = [session.page(name).message for name in ("variants", "batch", "replace")]
    deadline = _time.monotonic() + 20  # a run refused up front is None: only started runs are waited for
    while not all(run is None or run.finished for run in runs) and _time.monotonic() < deadline:
        _time.sleep(0.02)


def test_the_session_cap_counts_images_in_flight_across_pages(novita_env, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_SESSION", "2")
    novita_env.latency = 0.5
    st.cache_resource.clear()
    at = AppTest.from_function(_press_all_three, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    sizes = {"variants": 2, "batch": 2, "replace": 1}  # five images asked for, in three runs
    runs = dict(zip(sizes, at.session_state["runs"]))
    messages = dict(zip(sizes, at.session_state["messages"]))
    assert all(run is None or run.finished for run in runs.values())
    assert len(novita_env.posts()) == 2  # only two images were made
    done = sum(run.counts()["done"] for run in runs.values() if run is not None)
    refused = [task.error for run in runs.values() if run is not None for task in run.tasks
               if task.status == "failed"]
    # the three over the cap were refused: in flight (another run's reservation came first), or the whole run
    # up front when the reservations were already held as it was pressed
    refused_up_front = [name for name, run in runs.items() if run is None]
    assert done == 2 and len(refused) + sum(sizes[name] for name in refused_up_front) == 3
    assert all("per session" in describe(e, owner_key=True)[0] for e in refused)
    assert all("session" in messages[name] and "allows" in messages[name] for name in refused_up_front), messages
    account = at.session_state["account"]
    assert (account.owner_spent, account.owner_held, account.images) == (2, 0, 2)


def test_the_daily_ceiling_holds_across_sessions_and_the_third_is_told_why(novita_env, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_DAY", "2")
    sessions = [give_photo(new_app().run())]  # clears st.cache_resource once: the sessions share one ledger
    sessions += [give_photo(AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run())
                 for _ in range(2)]
    assert "Left today for everyone on the shared key: 2 of 2" in texts(sessions[0].sidebar.caption)
    for session in sessions:
        replace(session, "in a warehouse")
        assert not session.exception
    assert len(novita_env.posts()) == 2
    assert [len(s.session_state["history"]) for s in sessions] == [1, 1, 0]
    warning = texts(sessions[2].warning).replace("\\", "")  # the page escapes Markdown; the browser shows none
    assert "2 Novita images a day" in warning and "owner" in warning and "00:00 UTC" in warning, warning
    assert "offline studio" in warning
    assert "Left today for everyone on the shared key: 0 of 2" in texts(sessions[2].sidebar.caption)
    # the offline studio still works for the third
    sessions[2].radio(key="engine_preference").set_value("offline").run()
    replace(sessions[2], "in a warehouse")
    assert len(sessions[2].session_state["history"]) == 1 and len(novita_env.posts()) == 2


def test_a_day_of_zero_turns_novita_off_for_the_owners_key_and_automatic_goes_offline(novita_env, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_DAY", "0")
    at = give_photo(new_app().run())
    replace(at, "in a warehouse")
    assert not at.exception and not at.error
    assert next(iter(at.session_state["history"])).engine == "offline" and novita_env.posts() == []
    at.radio(key="engine_preference").set_value("novita").run()
    replace(at, "in a warehouse")
    said = (texts(at.warning) + texts(at.error)).replace("\\", "")
    assert "turned Novita off" in said and "00:00" not in said and novita_env.posts() == []
