"""What must never happen in the browser: script from a prompt, the API key on the page, one person
seeing another's photos, a key sent in clear text to a remote host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from PIL import Image

from tests.e2e.conftest import E2E_KEY, expect, jpeg, require_assets
from tests.novita_stub import Fault

require_assets()

XSS = """Kid's "room" </script><img src=x onerror=alert(1)>"""
EVIL_NAME = "<img src=x onerror=alert(2)>.jpg"  # (a " would reach the app as %22: the browser's form encoding)
MARKDOWN = "[click me](javascript:alert(3)) **bold** $x^2$ <b>html</b>"


def centre_colour(image: Image.Image) -> tuple[int, int, int]:
    w, h = image.size
    return image.convert("RGB").getpixel((w // 2, h // 2))


def assert_no_key(app, *, key: str = E2E_KEY) -> None:
    """The key is nowhere the browser can see: the app's messages on the wire, HTML of every frame,
    visible text, browser storage, cookies."""
    assert key not in app.leaks, "the app sent the API key to the browser"
    tail = key[-12:]  # and not even a recognisable piece of it
    storage = app.page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    cookies = str(app.page.context.cookies())
    for where, text in (("HTML", app.html_everywhere()), ("visible text", app.body_text()),
                        ("browser storage", storage), ("cookies", cookies)):
        assert key not in text and tail not in text, f"the API key shows in the page's {where}"


def test_script_in_a_prompt_is_shown_as_text_and_runs_nothing(studio, app_novita, stub):
    app = studio(app_novita)
    app.upload(EVIL_NAME, jpeg())
    expect(app.page.locator('[data-testid="stMarkdownContainer"]', has_text="Photo in use:")).to_contain_text(EVIL_NAME)
    app.replace(XSS, "PNG")  # waits for the slider: the prompt did not break the component's page

    expect(app.result_caption(XSS)).to_be_visible()  # literally, quotes and angle brackets included
    card_title = app.page.locator('[data-testid="stMarkdownContainer"] strong').filter(has_text="onerror")
    expect(card_title).to_have_text(XSS)  # the gallery card's title, literally
    frame = app.wait_for_slider()
    assert frame.eval_on_selector_all(".jx-label", "els => els.map(e => e.textContent)") == ["Before", "After"]
    for where in (app.page, frame):
        assert where.locator('img[src="x"]').count() == 0
    assert stub.requests[0].json["prompt"] == XSS
    got = app.download()
    assert got.name == "img-src-x-onerror-alert-2-kid-s-room-script-img-src-x-onerror.png"

    # Markdown is text too: no link, no bold, no formula.
    app.replace(MARKDOWN, "WEBP")
    expect(app.result_caption(MARKDOWN)).to_be_visible()
    for where in (app.page, app.wait_for_slider()):
        assert where.locator('a[href^="javascript"]').count() == 0
    strong = app.page.locator('[data-testid="stMarkdownContainer"] strong')
    assert strong.filter(has_text=re.compile(r"^bold$")).count() == 0
    expect(strong.filter(has_text="click me")).to_have_text(MARKDOWN)  # the gallery card's title, as typed
    assert app.page.locator('[data-testid="stMarkdownContainer"] b').count() == 0
    assert app.page.locator(".katex").count() == 0

    app.go_to("History")
    app.act(app.gallery_buttons("Open").nth(1).click)  # the older one: the script-like prompt
    expect(app.result_caption(XSS)).to_be_visible()
    app.wait_for_slider()
    assert app.dialogs == [], f"a script ran: {app.dialogs}"
    assert not [u for u in app.requests if urlsplit(u).path.endswith("/x")], "the injected <img> was loaded"


def test_api_key_never_reaches_the_browser(studio, app_novita, stub):
    app = studio(app_novita)
    expect(app.page.get_by_text("the app owner's key is set")).to_be_visible()
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "WEBP")
    got = app.download()
    assert E2E_KEY.encode() not in got.data
    assert stub.requests[-1].headers["Authorization"] == f"Bearer {E2E_KEY}"  # it was used, server-side
    assert_no_key(app)

    # A server that echoes the key back in its error message: the page shows the error, not the key.
    stub.script(Fault("500", status=400, message=f"prompt refused for key {E2E_KEY}"))  # an unknown reason: quoted
    app.type_prompt("something refused")
    app.press_replace()
    error = app.error_box()
    expect(error).to_contain_text(re.compile(r"refused", re.I))
    assert E2E_KEY not in error.inner_text()
    stub.script("401")
    app.press_replace()
    expect(app.error_box()).to_contain_text(re.compile(r"\bkey\b", re.I))
    assert_no_key(app)
    app.go_to("History")
    app.wait_for_slider()
    assert_no_key(app)


def test_own_key_from_the_sidebar_is_used_and_never_shown_back(studio, app_novita, stub):
    own = "sk_pasted_by_a_person_4d9e2b7a61c0"
    app = studio(app_novita)
    app.secrets.add(own)  # the browser sends it once; the app must never send it back
    field = app.page.get_by_label("Your own Novita API key (optional)", exact=True)
    expect(field).to_have_attribute("type", "password")
    field.fill(own)
    app.act(lambda: field.press("Enter"))
    expect(app.page.get_by_text("Using your own Novita key for this session")).to_be_visible()
    app.upload("mug.jpg", jpeg())
    app.replace("in a warehouse", "PNG")
    assert stub.posts()[-1].headers["Authorization"] == f"Bearer {own}"
    assert_no_key(app, key=own)
    assert_no_key(app)

    app.act(app.page.get_by_role("button", name="Forget my key").click)
    expect(app.page.get_by_text("the app owner's key is set")).to_be_visible()


def test_two_people_at_once_see_only_their_own_work(studio, app_novita, stub):
    stub.latency = 1.0  # both runs are in flight at the same time
    alice, bob = studio(app_novita), studio(app_novita)
    alices_key = "sk_alices_own_key_0c8e5a3f9b71"
    field = alice.page.get_by_label("Your own Novita API key (optional)", exact=True)
    field.fill(alices_key)
    alice.act(lambda: field.press("Enter"))  # Alice brings her own key; Bob uses the owner's
    for person in (alice, bob):
        person.secrets.add(alices_key)
    expect(alice.page.get_by_text("Using your own Novita key for this session")).to_be_visible()
    expect(bob.page.get_by_text("the app owner's key is set")).to_be_visible()
    alice.upload("alice-red.jpg", jpeg(colour=(210, 30, 30)))
    bob.upload("bob-blue.jpg", jpeg(colour=(30, 30, 210)))
    alice.type_prompt("alice on a beach").choose_format("PNG")
    bob.type_prompt("bob in a forest").choose_format("JPEG")
    alice.press_replace(wait=False)
    bob.press_replace(wait=False)
    for person in (alice, bob):
        person.wait_for_outcome()
        person.wait_for_slider()
    assert len(stub.posts()) == 2  # the paid calls (Alice's key also read her balance)
    first, second = sorted(stub.posts(), key=lambda r: r.received_at)
    assert second.received_at - first.received_at < stub.latency, "the two runs did not overlap"
    keys = {r.json["prompt"]: r.headers["Authorization"] for r in stub.posts()}
    assert keys == {"alice on a beach": f"Bearer {alices_key}", "bob in a forest": f"Bearer {E2E_KEY}"}
    assert not alice.leaks and not bob.leaks

    mine = {alice: ("alice-red.jpg", "alice on a beach"), bob: ("bob-blue.jpg", "bob in a forest")}
    for me, other in ((alice, bob), (bob, alice)):
        html = me.html_everywhere()
        for secret in mine[other]:
            assert secret not in html, f"{mine[me][0]}'s page shows {secret!r}"
        expect(me.result_caption(mine[me][1])).to_be_visible()
        assert me.gallery_count() == 1
    assert alice.slider_images()[0]["src"] != bob.slider_images()[0]["src"]

    a, b = alice.download(), bob.download()
    assert (a.name, a.image.format) == ("alice-red-alice-on-a-beach.png", "PNG")
    assert (b.name, b.image.format) == ("bob-blue-bob-in-a-forest.jpg", "JPEG")
    r, g, bl = centre_colour(a.image)
    assert r > 150 and bl < 90, (r, g, bl)
    r, g, bl = centre_colour(b.image)
    assert bl > 150 and r < 90, (r, g, bl)

    for me, other in ((alice, bob), (bob, alice)):
        me.go_to("History")
        expect(me.page.get_by_text("1 result in this browser")).to_be_visible()
        expect(me.result_caption(mine[me][1])).to_be_visible()
        assert mine[other][1] not in me.html_everywhere()


def test_plain_http_to_a_remote_host_is_refused_with_a_sentence(studio, app_insecure, stub):
    app = studio(app_insecure)
    app.upload("mug.jpg", jpeg())
    app.type_prompt("in a warehouse").choose_format("PNG")
    app.press_replace()
    error = app.error_box()
    expect(error).to_have_count(1)
    expect(error).to_contain_text("https://")
    expect(error).to_contain_text("NOVITA_BASE_URL")
    app.check()
    expect(app.result_download()).to_have_count(0)
    expect(app.page.get_by_label("Prompt", exact=True)).to_have_value("in a warehouse")  # nothing the person gave is lost
    expect(app.page.get_by_text("Photo in use:")).to_be_visible()
    assert stub.requests == []  # the stand-in is the only server there is, and it heard nothing
    assert not [u for u in app.blocked if "example.invalid" in u]
    assert_no_key(app)
