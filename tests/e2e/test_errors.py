"""When things go wrong in the browser: a sentence that says what to do, never a traceback, and nothing the
person gave is lost."""

from __future__ import annotations

import re

from tests.e2e.conftest import expect, jpeg, require_assets
from tests.novita_stub import Fault

require_assets()


def test_slow_novita_times_out_then_try_again_works(studio, app_novita, stub):
    stub.script(Fault("timeout", delay=8))  # the app waits 3 s (NOVITA_TIMEOUT) for the first reply
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.type_prompt("in a warehouse").choose_format("WEBP")
    app.press_replace()
    error = app.error_box()
    expect(error).to_contain_text(re.compile(r"longer than 3 s", re.I))
    expect(app.result_download()).to_have_count(0)
    assert len(stub.requests) == 1  # a read timeout is never re-sent by itself: it may have been paid
    expect(app.page.get_by_label("Prompt")).to_have_value("in a warehouse")
    expect(app.page.get_by_role("radio", name=re.compile(r"^WEBP\b"))).to_be_checked()
    expect(app.page.get_by_text("Photo in use:")).to_be_visible()

    app.start_run(app.page.get_by_role("button", name="Try again").click)
    expect(app.error_box()).to_have_count(0)
    expect(app.result_caption("in a warehouse")).to_contain_text("WEBP")
    app.wait_for_slider()
    got = app.download()
    assert (got.name, got.image.format) == ("mug-in-a-warehouse.webp", "WEBP")
    assert len(stub.requests) == 2


def test_a_file_that_is_not_a_photo_gets_a_sentence(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload("notes.png", b"this is a shopping list, not a picture", mime="image/png")
    error = app.error_box()
    expect(error).to_contain_text("notes.png")
    app.type_prompt("in a warehouse")
    app.press_replace()  # still no photo: the app says what is missing and sends nothing
    expect(app.page.get_by_text(re.compile(r"add a photo", re.I))).to_be_visible()
    assert stub.requests == []

    app.upload("mug.jpg", jpeg())  # the next good photo clears the refusal and works
    expect(app.error_box()).to_have_count(0)
    app.replace(fmt="PNG")
    expect(app.result_caption("in a warehouse")).to_be_visible()
