"""The main path in a real browser with the app's default settings: Qwen-Image Edit through the task API, as
Novita serves it today. Progress shows while Novita works; the result has the photo's size and the slider lines
up; the download is in the chosen format; the key never reaches the image link."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E_KEY, FORMATS, expect, jpeg, require_assets
from tests.novita_stub import EDIT_PATH

require_assets()

PROMPT = "on a marble counter, soft light"


@pytest.fixture
def novita_today(edit_server):
    edit_server.reset()
    edit_server.latency = 4.0  # long enough for a person to see the progress
    yield edit_server
    edit_server.reset()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_qwen_image_edit_from_photo_to_download(studio, app_edit, novita_today, fmt):
    pil_format, ext = FORMATS[fmt]
    app = studio(app_edit)
    app.upload("mug.jpg", jpeg((900, 600)))
    expect(app.page.get_by_role("checkbox", name="Keep my subject exactly as it is")).to_be_checked()
    app.type_prompt(PROMPT).choose_format(fmt)
    app.press_replace(wait=False)
    expect(app.page.get_by_text("Novita", exact=False).filter(has_text="Queued at Novita").or_(
        app.page.get_by_text("Novita is making the new background", exact=False)).first).to_be_visible(timeout=15_000)
    app.wait_for_outcome()

    expect(app.result_caption(PROMPT)).to_contain_text(f"{fmt} · Novita")
    expect(app.result_caption(PROMPT)).to_contain_text("900 × 600 px")
    before, after = app.slider_images()
    assert (before["w"], before["h"]) == (after["w"], after["h"])  # the two sides line up to the pixel
    assert abs(before["w"] / before["h"] - 900 / 600) < 0.01
    if fmt == "PNG":
        app.screenshot("main-flow-qwen-edit.png", height=1900)

    got = app.download()
    assert got.name == f"mug-on-a-marble-counter-soft-light.{ext}"
    assert (got.image.format, got.image.size) == (pil_format, (900, 600))
    assert E2E_KEY.encode() not in got.data

    posts = [r for r in novita_today.requests if r.method == "POST"]
    assert [r.path for r in posts] == [EDIT_PATH]
    assert PROMPT in posts[0].json["prompt"] and posts[0].json["output_format"] == fmt.lower()
    fetches = novita_today.image_fetches()
    assert fetches and all("Authorization" not in r.headers for r in fetches)
    assert novita_today.polls() <= 4  # a 4 s task: after 1 s, then every 2.5 s
    app.check()
