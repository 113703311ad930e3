"""Kept results through AppTest: a new session of the same browser (its key given, as its cookie would be)
finds them; another does not; Forget deletes the files; a damaged file is skipped; TTL 0 keeps nothing."""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.test_app import give_photo, page_text, replace


def session_of(token: str | None = None) -> AppTest:
    """A new session; with `token`, of the browser that holds that key (a reload)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    if token is not None:
        at.session_state["browser.token"] = token
    at.run()
    assert not at.exception
    return at


def kept_files(tmp_path) -> list:
    return sorted((tmp_path / "history-store").rglob("*.zip"))


def test_a_reload_finds_the_results_another_browser_does_not_and_forget_deletes_them(app, novita_env, tmp_path):
    give_photo(app)
    replace(app, "in a warehouse")
    replace(app, "on a beach", "JPEG")
    token = app.session_state["browser.token"]
    assert len(kept_files(tmp_path)) == 2

    again = session_of(token)
    assert [i.prompt for i in again.session_state["history"]] == ["on a beach", "in a warehouse"]
    assert "Your results stay on this server for 24 hours after you make them, visible only in this browser" \
        in page_text(again)
    assert len(session_of().session_state["history"]) == 0

    again.button(key="keeper.forget").click().run()
    assert not again.exception
    assert kept_files(tmp_path) == [] and len(again.session_state["history"]) == 0
    assert again.session_state["browser.token"] != token  # the old key names nothing now
    assert len(session_of(token).session_state["history"]) == 0
    assert len(novita_env.requests) == 2


def test_a_damaged_kept_file_is_skipped_with_a_log_line(app, novita_env, tmp_path, caplog):
    give_photo(app)
    replace(app, "in a warehouse")
    replace(app, "on a beach")
    newest = next(iter(app.session_state["history"]))
    [damaged] = [p for p in kept_files(tmp_path) if p.stem == newest.id]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        again = session_of(app.session_state["browser.token"])
    assert [i.prompt for i in again.session_state["history"]] == ["in a warehouse"]
    assert not again.error
    assert any("damaged" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)


def test_ttl_zero_keeps_results_in_the_session_only(novita_env, monkeypatch, tmp_path):
    monkeypatch.setenv("HISTORY_TTL_HOURS", "0")
    st.cache_resource.clear()
    at = session_of()
    give_photo(at)
    replace(at, "in a warehouse")
    assert len(at.session_state["history"]) == 1 and kept_files(tmp_path) == []
    assert "Results stay only while this tab is open" in page_text(at)
    assert not [b for b in at.button if b.key == "keeper.forget"]


def test_a_store_setting_that_cannot_work_leaves_the_app_working_as_before(novita_env, monkeypatch, tmp_path,
                                                                          caplog):
    monkeypatch.setenv("HISTORY_STORE_URL", "https://not-a-bucket.example.com/")
    st.cache_resource.clear()
    with caplog.at_level(logging.ERROR):
        at = session_of()
        give_photo(at)
        replace(at, "in a warehouse")
    assert not at.exception and not at.error and len(at.session_state["history"]) == 1
    assert "Results stay only while this tab is open" in page_text(at)
    assert any("history store off" in r.getMessage() and "s3://bucket/prefix" in r.getMessage()
               for r in caplog.records)
