"""What a quick or hostile visitor does in a real browser: pick a big photo and type at once, put links and
direction overrides into names and prompts; and the slider's third-party script is pinned and checked."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.e2e.conftest import (JUXTAPOSE, JUXTAPOSE_FILES, RUN_TIMEOUT, expect, jpeg, juxtapose_version,
                                require_assets)

require_assets()


def twelve_megapixel_jpeg() -> bytes:
    """A 4000 × 3000 phone-sized photo with real texture, so preparing it takes a noticeable while."""
    grain = Image.effect_noise((4000, 3000), 40).convert("RGB")
    photo = Image.blend(Image.new("RGB", grain.size, (120, 150, 190)), grain, 0.35)
    photo.paste((200, 60, 40), (1000, 750, 3000, 2250))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_a_big_photo_picked_while_typing_the_prompt_is_the_one_used(studio, app_novita, stub):
    app = studio(app_novita)
    data = twelve_megapixel_jpeg()
    prompt = "on a sunny beach at sunset"
    box = app.page.get_by_label("Prompt")
    # No waiting between the steps: the prompt's rerun arrives while the photo's is still preparing it.
    app.page.set_input_files('input[type="file"]', files=[{"name": "phone.jpg", "mimeType": "image/jpeg",
                                                           "buffer": data}])
    # The uploader shows the file once its bytes reached the server; the person types from then on.
    expect(app.page.get_by_test_id("stFileChipName")).to_have_text("phone.jpg", timeout=RUN_TIMEOUT)
    expect(app.page.get_by_test_id("stFileChipIconSpinner")).to_have_count(0, timeout=RUN_TIMEOUT)
    box.fill(prompt)
    box.press("Control+Enter")
    app.press_replace()
    assert "Add a photo first" not in app.body_text()
    expect(app.result_caption(prompt)).to_be_visible(timeout=RUN_TIMEOUT)
    assert "Photo in use: phone.jpg" in app.photo_line()
    assert len(stub.requests) == 1 and stub.requests[0].json["prompt"] == prompt


HOSTILE_PROMPT = ("see https://evil.example/x and www.evil.example, mail me@evil.example "
                  ":smile: :red[red] **bold** <b>tag</b>")
RLO = "\u202e"
HOSTILE_NAME = f"www.evil.example {RLO}gpj.exe.jpg"  # shown with the override it reads "…exe.jpg"
SHOWN_NAME = "www.evil.example gpj.exe.jpg"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def assert_shown_as_text(app, *texts: str) -> None:
    """No link, formatting or bidi override came out of user text, and the text itself is there literally."""
    page = app.page
    links = page.eval_on_selector_all(
        '[data-testid="stMain"] a', "els => els.map(a => a.getAttribute('href') || '')")
    assert not [href for href in links if "evil" in href or href.startswith("mailto:")], links
    formatted = page.eval_on_selector_all(  # the gallery's title is bold as a whole; nothing inside it is
        '[data-testid="stMain"] :is(strong, b, em, code, span[class*="color"])',
        "els => els.map(e => e.textContent.trim()).filter(t => ['bold', 'tag', 'red'].includes(t))")
    assert not formatted, formatted
    body = app.body_text()
    assert not any(ch in body for ch in BIDI)
    body = body.replace("\u2060", "")  # the invisible word joiner that keeps a bare address from linking
    assert "😄" not in body
    for text in texts:
        assert text in body, text


def test_names_and_prompts_are_shown_as_typed_on_every_page(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload(HOSTILE_NAME, jpeg())
    assert f"Photo in use: {SHOWN_NAME}" in app.photo_line().replace("\u2060", "")
    app.type_prompt(HOSTILE_PROMPT)
    app.press_replace()
    app.wait_for_slider()
    assert_shown_as_text(app, SHOWN_NAME, f"“{HOSTILE_PROMPT}”", f"{HOSTILE_PROMPT}\n")  # caption, gallery
    got = app.download()
    assert got.name == "www-evil-example-gpj-exe-see-https-evil-example-x-and-www-evil.png"  # no override

    app.go_to("Variants")
    app.page.get_by_label("Idea 1").fill(HOSTILE_PROMPT)
    app.act(lambda: app.page.get_by_label("Idea 1").press("Enter"))
    app.act(app.page.get_by_role("button", name="Make variants").click)
    expect(app.page.get_by_role("button", name="Open in slider")).to_have_count(1, timeout=RUN_TIMEOUT)
    app.settle()
    assert_shown_as_text(app, f"“{HOSTILE_PROMPT}”")

    app.go_to("Batch")
    app.act(lambda: app.page.set_input_files('input[type="file"]', files=[
        {"name": HOSTILE_NAME, "mimeType": "image/jpeg", "buffer": jpeg()}]))
    app.type_prompt(HOSTILE_PROMPT)
    app.page.get_by_role("button", name=re.compile("Replace all backgrounds")).click()
    expect(app.page.get_by_text(re.compile(r"— done in \d+\.\d s"))).to_have_count(1, timeout=RUN_TIMEOUT)
    app.settle()
    assert_shown_as_text(app, f"{SHOWN_NAME} — done in")


def sri(path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def test_the_sliders_script_and_stylesheet_are_pinned_and_checked(studio, app_novita, stub):
    version = juxtapose_version()
    pinned = json.loads((ROOT / "tests" / "e2e" / "package.json").read_text())["dependencies"]["juxtaposejs"]
    assert pinned == version, "tests/e2e/package.json and the installed juxtaposejs differ: run npm install"
    app = studio(app_novita)
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse")
    frame = app.wait_for_slider()
    tags = frame.eval_on_selector_all(
        "script[src], link[rel=stylesheet]",
        "els => els.map(e => ({src: e.src || e.href, integrity: e.integrity, cors: e.crossOrigin}))")
    expected = {f"build/{rel}": sri(JUXTAPOSE / rel) for rel, _ in JUXTAPOSE_FILES.values()}
    assert len(tags) == 2, tags
    for tag in tags:
        rel = next(r for r in expected if tag["src"].endswith(r))
        assert f"/juxtaposejs@{version}/" in tag["src"] and "latest" not in tag["src"], tag
        assert tag["integrity"] == expected[rel] and tag["cors"] == "anonymous", tag
    assert app.drag_slider(0.25) == pytest.approx(25, abs=6)  # the checked script still runs the slider


def test_a_changed_script_is_refused_by_the_browser(studio, app_novita, stub):
    app = studio(app_novita)
    tampered = (JUXTAPOSE / "js/juxtapose.min.js").read_bytes() + b"\n/* changed on the CDN */"
    app.page.context.route("**/cdn.jsdelivr.net/npm/juxtaposejs@*/build/js/*", lambda route: route.fulfill(
        body=tampered, content_type="application/javascript", headers={"Access-Control-Allow-Origin": "*"}))
    app.upload("mug.jpg", jpeg())
    with app.page.expect_console_message(lambda m: "integrity" in m.text, timeout=RUN_TIMEOUT) as message:
        app.type_prompt("in a warehouse")
        app.press_replace()
    assert "blocked" in message.value.text
    assert app.slider_frame().locator(".jx-slider").count() == 0
