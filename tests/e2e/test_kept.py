"""Results that survive a reload, in a real browser: the browser's key in a cookie, results read back from the
store byte for byte, nothing for another browser, Forget deletes the files, a closed tab loses nothing."""

from __future__ import annotations

import http.server
import re
import threading
import time

import pytest

from services.store import owner_of
from tests.e2e.conftest import (EXCEPTION, RUN_TIMEOUT, VIEWPORT, Studio, _route_context, expect, jpeg,
                                require_assets)

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
    app.screenshot("kept-after-reload.png", height=1900)
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
    expect(again.page.locator("strong", has_text="in a greenhouse")).to_be_visible()  # the gallery card
    assert len(stub.requests) == 1


@pytest.fixture
def embedding_site(app_novita):
    """Another site (http://localhost:…, not the app's 127.0.0.1) whose page shows the app in an iframe, as a
    wiki or a portfolio page embeds a Community Cloud app."""
    page = f'<iframe src="{app_novita.url}" style="width:1200px;height:950px;border:0"></iframe>'.encode()

    class Embed(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Embed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_embedded_by_another_site_the_key_is_kept_in_that_site_only(chromium, app_novita, stub, embedding_site):
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        _route_context(context)
        page = context.new_page()
        page.goto(embedding_site)
        frame = page.frame_locator("iframe")
        frame.get_by_role("button", name="Replace background", exact=True).wait_for(timeout=RUN_TIMEOUT)
        frame.get_by_role("tab", name="Try a sample").click()  # no upload: see README on embedding
        frame.locator('button[data-variant="pills"]').filter(has_text="Red mug on a studio sweep").click()
        expect(frame.get_by_text("Photo in use:")).to_be_visible(timeout=RUN_TIMEOUT)
        frame.get_by_role("textbox", name="Prompt").fill("inside a glass atrium")
        frame.get_by_role("textbox", name="Prompt").press("Control+Enter")
        frame.get_by_role("button", name="Replace background", exact=True).click()
        expect(frame.get_by_role("button", name="Open", exact=True)).to_have_count(1, timeout=RUN_TIMEOUT)

        # The browser refuses an ordinary cookie from the embedded app, and keeps the app's key all the same:
        # partitioned, for this embedding site only.
        app_frame = next(f for f in page.frames if f.url.startswith(app_novita.url))
        app_frame.evaluate("document.cookie = 'ordinary=1; SameSite=None; Secure; Path=/'")
        assert "ordinary=" not in app_frame.evaluate("document.cookie")
        [kept] = [c for c in context.cookies() if c["name"] == COOKIE]
        assert kept["partitionKey"] == "http://localhost"

        page.reload()
        expect(frame.get_by_role("button", name="Open", exact=True)).to_have_count(1, timeout=RUN_TIMEOUT)
        expect(frame.locator("strong", has_text="inside a glass atrium")).to_be_visible()  # the gallery card

        direct = Studio(context.new_page(), app_novita, []).open()  # the app on its own: another partition
        assert direct.gallery_count() == 0
        expect(frame.locator(EXCEPTION)).to_have_count(0)
    finally:
        context.close()
