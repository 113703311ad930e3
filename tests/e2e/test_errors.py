"""When things go wrong in the browser: a sentence that says what to do, never a traceback, and nothing the
person gave is lost."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import E2E_KEY, _serve, expect, jpeg, require_assets
from tests.novita_stub import Fault

require_assets()


@pytest.fixture(scope="module")
def app_no_credit(request, stub_server):
    """An app of its own: the pause that follows an empty account must not hold back other tests' runs."""
    return _serve(request, "no-credit", {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": stub_server.base_url,
                                         "NOVITA_TIMEOUT": "3"})


def test_out_of_credit_is_the_owners_to_fix_and_pauses_novita_for_everyone(studio, app_no_credit, stub):
    stub.script("BILLING_BALANCE_NOT_ENOUGH")  # Novita's own answer for an empty account: HTTP 400
    app = studio(app_no_credit)
    app.upload("mug.jpg", jpeg())
    app.type_prompt("in a warehouse")
    app.press_replace()
    error = app.error_box()
    expect(error).to_contain_text("out of credit")
    expect(error).to_contain_text("owner has been told")
    expect(error).not_to_contain_text(re.compile(r"change the prompt|another photo|key was refused|not valid", re.I))
    expect(app.page.get_by_test_id("stSidebar")).to_contain_text("Novita is paused")
    expect(app.page.get_by_label("Prompt", exact=True)).to_have_value("in a warehouse")
    assert len(stub.requests) == 1

    # Someone else opening the app now reads the line before pressing anything; Automatic makes their
    # result with the offline studio, and nothing more reaches Novita on the owner's key.
    other = studio(app_no_credit)
    expect(other.page.get_by_test_id("stSidebar")).to_contain_text("out of credit")
    expect(other.page.get_by_text("paused for everyone")).to_be_visible()
    other.upload("mug.jpg", jpeg())
    other.replace("on a marble counter", fmt="PNG")
    expect(other.result_caption("on a marble counter")).to_contain_text("Offline")
    assert len(stub.requests) == 1


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
    expect(app.page.get_by_label("Prompt", exact=True)).to_have_value("in a warehouse")
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
