"""Results that survive a reload, in a real browser: the browser's key in a cookie, results read back from the
store byte for byte, nothing for another browser, Forget deletes the files, a closed tab loses nothing."""

from __future__ import annotations

import re
import time

from services.store import owner_of
from tests.e2e.conftest import RUN_TIMEOUT, Studio, expect, jpeg, require_assets

require_assets()

COOKIE = "rbs_browser"


def token(app: Studio) -> str:
    return next(c["value"] for c in app.page.context.cookies() if c["name"] == COOKIE)


def kept_files(app: Studio, key: str) -> list:
    """The result files the app's store holds for the browser with this key."""
    return sorted((app.server.log_dir / "history" / owner_of(key)).glob("*.zip"))


def reload(app: Studio) -> Studio:
    before = app.runs()
    app.page.reload()
    app.page.get_by_role("button", name="Replace background").wait_for(timeout=RUN_TIMEOUT)
    return app.settle(after=before)


def test_two_results_survive_a_reload_byte_for_byte_and_another_browser_sees_none(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    first = app.download()
    app.replace("on a sunny beach at sunset", "WEBP")
    second = app.download()
    key = token(app)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key) and key not in app.page.url
    assert len(kept_files(app, key)) == 2
    expect(app.page.get_by_text(re.compile(r"Your results stay on this server for 24 hours after you make them, "
                                           r"visible only in this browser"))).to_be_visible()

    reload(app)
    assert app.gallery_count() == 2
    assert token(app) == key  # the same browser keeps its key
    app.go_to("History")
    expect(app.page.get_by_text("2 results in this browser")).to_be_visible()
    downloads = app.gallery_buttons("Download")
    again = [app.download(downloads.nth(0)), app.download(downloads.nth(1))]  # newest first
    assert [(d.name, d.data) for d in again] == [(second.name, second.data), (first.name, first.data)]
    assert len(stub.requests) == 2  # nothing was made again

    other = studio(app_novita)  # another browser: another key, nothing of the first one's
    assert token(other) != key
    assert other.gallery_count() == 0
    other.go_to("History")
    expect(other.page.get_by_text("No results yet")).to_be_visible()
    assert app.server.log(0).count(key) == 0  # the key is never logged


def test_forget_my_photos_deletes_the_files_at_once(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    key = token(app)
    assert len(kept_files(app, key)) == 1
    app.act(app.page.get_by_role("button", name="Forget my photos").click)
    expect(app.page.get_by_text("Deleted 1 result from the server")).to_be_visible()
    assert kept_files(app, key) == []
    assert app.gallery_count() == 0
    expect(app.page.get_by_text("Your results stay")).to_have_count(0)
    deadline = time.monotonic() + 10
    while token(app) == key and time.monotonic() < deadline:
        time.sleep(0.1)
    assert token(app) != key, "after Forget the browser still holds the old key"
    reload(app)
    assert app.gallery_count() == 0


def test_a_run_finished_after_its_tab_closed_is_there_when_the_app_opens_again(studio, app_novita, stub):
    stub.latency = 2.0
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.type_prompt("in a greenhouse").choose_format("PNG")
    app.press_replace(wait=False)
    deadline = time.monotonic() + 15
    while not stub.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.requests, "the run never reached the stand-in"
    key = token(app)
    context = app.page.context
    app.page.close()  # mid-run: the stand-in has not answered yet
    deadline = time.monotonic() + 20
    while not kept_files(app, key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(kept_files(app, key)) == 1, "the finished run was not kept"

    again = Studio(context.new_page(), app.server, app.blocked).open()
    assert again.gallery_count() == 1
    expect(again.page.get_by_text("in a greenhouse", exact=True)).to_be_visible()
    assert len(stub.requests) == 1
