"""The pages as a person uses them, through Streamlit's AppTest, against the loopback stand-in."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from services.images import sniff_format
from tests.conftest import TEST_KEY, photo_bytes



def give_photo(at: AppTest, name="mug.jpg", data: bytes | None = None) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data or photo_bytes(), "image/jpeg"))
    return at.run()


def replace(at: AppTest, prompt="in a warehouse", fmt="PNG") -> AppTest:
    at.text_area(key="prompt").input(prompt)
    at.radio(key="format").set_value(fmt)
    at.button(key="replace.run").click()
    return at.run()


def page_text(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "error", "warning", "info")
             for e in getattr(at, kind)]
    return "\n".join(parts)


def test_landing_shows_the_stable_labels(app):
    assert app.text_area(key="prompt").label == "Prompt"
    fmt = app.radio(key="format")
    assert fmt.label == "Output format" and list(fmt.options) == ["PNG", "WEBP", "JPEG"]
    assert app.button(key="replace.run").label == "Replace background"
    assert app.file_uploader(key="upload").label == "Photo"
    assert app.title[0].value == "Replace background"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_upload_prompt_format_run_gives_a_result(app, novita_env, fmt):
    give_photo(app)
    replace(app, "on a marble counter, soft light", fmt)
    assert not app.exception and not app.error
    history = app.session_state["history"]
    assert len(history) == 1
    item = next(iter(history))
    assert item.prompt == "on a marble counter, soft light" and item.image_type == fmt.lower()
    assert sniff_format(item.result) == fmt.lower()
    assert item.download_name == f"mug-on-a-marble-counter-soft-light.{'jpg' if fmt == 'JPEG' else fmt.lower()}"
    assert len(app.get("iframe")) == 1
    downloads = [b.proto.label for b in app.get("download_button")]
    assert f"Download {fmt}" in downloads
    sent = novita_env.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert sent.json["prompt"] == "on a marble counter, soft light"
    assert sent.json["extra"]["response_image_type"] == fmt.lower()


def test_run_again_on_the_same_photo_without_reupload(app, novita_env):
    give_photo(app)
    replace(app, "in a warehouse", "PNG")
    replace(app, "on a beach", "JPEG")
    assert [i.prompt for i in app.session_state["history"]] == ["on a beach", "in a warehouse"]
    assert len(novita_env.requests) == 2
    assert novita_env.requests[0].json["image_file"] == novita_env.requests[1].json["image_file"]


def test_guards_say_what_is_missing_and_send_nothing(app, novita_env):
    app.button(key="replace.run").click().run()
    assert "Add a photo first" in app.warning[0].value
    give_photo(app)
    app.button(key="replace.run").click().run()
    assert "Write a prompt first" in app.warning[0].value
    assert novita_env.requests == [] and len(app.session_state["history"]) == 0


def test_example_prompt_fills_the_prompt(app):
    app.pills(key="prompt_example").set_value("in a warehouse").run()
    assert app.text_area(key="prompt").value == "in a warehouse"
    assert app.pills(key="prompt_example").value is None


def test_refused_prompt_says_rephrase_it_and_keeps_everything(app, novita_env):
    give_photo(app)
    replace(app, "first", "PNG")
    novita_env.script("ILLEGAL_PROMPT")
    replace(app, "something forbidden", "WEBP")
    assert not app.exception
    assert "Rephrase the prompt" in app.error[0].value and "the photo is fine" in app.error[0].value
    assert app.text_area(key="prompt").value == "something forbidden"
    assert app.radio(key="format").value == "WEBP"
    assert app.session_state["photo"].name == "mug.jpg"
    assert [i.prompt for i in app.session_state["history"]] == ["first"]
    assert not [b for b in app.button if b.key == "replace.retry"]  # a refusal is not retried blindly


def test_server_error_offers_one_click_retry(app, novita_env):
    give_photo(app)
    novita_env.script("500")
    replace(app)
    assert "Try again" in [b.label for b in app.button]
    assert len(app.session_state["history"]) == 0
    app.button(key="replace.retry").click().run()
    assert not app.error
    assert len(app.session_state["history"]) == 1
    assert len(novita_env.requests) == 2


def test_unreadable_upload_is_refused_with_a_sentence(app, novita_env):
    give_photo(app, "notes.png", b"this is a text file, not a picture")
    assert not app.exception
    assert "notes.png" in app.error[0].value
    assert app.session_state["photo"] is None


def test_own_key_from_the_sidebar_is_used_and_never_shown(app, novita_env):
    app.text_input(key="key_field").input("sk_my_own_key_987").run()
    # AppTest reruns only the page file after its first run, so the sidebar's note is not in the tree here.
    assert app.session_state["key_field"] == ""  # moved out of the widget: never sent back to the page
    give_photo(app)
    replace(app)
    assert novita_env.posts()[-1].headers["Authorization"] == "Bearer sk_my_own_key_987"
    assert "sk_my_own_key_987" not in page_text(app)


def test_history_page_lists_reopens_and_deletes(app):
    give_photo(app)
    replace(app, "one")
    replace(app, "two")
    app.switch_page("views/history.py").run()
    assert not app.exception
    assert app.title[0].value == "History"
    assert len(app.get("iframe")) == 1
    history = app.session_state["history"]
    older = list(history)[1]
    app.button(key=f"history.gallery.open.{older.id}").click().run()
    assert app.session_state["history.page"].opened == older.id
    app.button(key=f"history.gallery.delete.{older.id}").click().run()
    assert [i.prompt for i in app.session_state["history"]] == ["two"]
    app.button(key="history.clear").click().run()
    assert len(app.session_state["history"]) == 0
    assert "No results yet" in app.info[0].value


def test_photo_and_prompt_survive_a_visit_to_history(app):
    give_photo(app)
    replace(app, "in a warehouse", "WEBP")
    app.switch_page("views/history.py").run()
    app.switch_page("views/replace.py").run()
    assert app.session_state["photo"].name == "mug.jpg"
    assert app.text_area(key="prompt").value == "in a warehouse"
    assert app.radio(key="format").value == "WEBP"


def test_the_slider_never_switches_pillows_bomb_guard_off(monkeypatch):
    """streamlit_image_comparison sets `Image.MAX_IMAGE_PIXELS = None` on every call; the wrapper gives it a
    view of Pillow of its own, so the guard stays on for every thread even while the package runs."""
    from PIL import Image

    from components import compare
    from services import images

    before, seen = Image.MAX_IMAGE_PIXELS, []
    encode = compare.package.pillow_to_base64
    monkeypatch.setattr(compare.package, "pillow_to_base64",
                        lambda image: seen.append(Image.MAX_IMAGE_PIXELS) or encode(image))  # mid-call
    jpeg = images.preview(photo_bytes())
    html, height = compare._markup(jpeg, jpeg, 704)
    assert seen == [before, before] and before is not None
    assert Image.MAX_IMAGE_PIXELS == before
    assert compare.package.Image.MAX_IMAGE_PIXELS is None  # the package did switch it off: in its own view
    assert "juxtapose.JXSlider" in html and height > 0
    assert html.count("data:image/jpeg;base64,") == 2  # our previews, not the package's quality-100 copies


@pytest.mark.parametrize("size", [(1024, 768), (1008, 756), (683, 1024), (1001, 997), (800, 533)])
def test_the_sliders_frame_fits_the_previews_and_carries_them_as_they_are(size):
    """The package is handed a small blank of the previews' proportions: the frame's height is the one it
    would give the previews themselves, and the page carries our two JPEGs byte for byte."""
    import base64
    import io

    from PIL import Image

    from components import compare

    def jpeg(colour):
        buffer = io.BytesIO()
        Image.new("RGB", size, colour).save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    before, after = jpeg("red"), jpeg("blue")
    html, height = compare._markup(before, after, compare.WIDTH)
    assert height == int(compare.WIDTH * size[1] / size[0] * 0.95)
    uris = [f"data:image/jpeg;base64,{base64.b64encode(data).decode()}" for data in (before, after)]
    assert html.index(uris[0]) < html.index(uris[1])


def _three_sliders() -> None:
    import io

    from PIL import Image

    from components import compare

    for n, colour in enumerate(("red", "green", "blue")):
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), colour).save(buffer, "JPEG", quality=85)
        compare.compare(buffer.getvalue(), buffer.getvalue(), key=f"result-{n}")


def test_a_slider_leaves_no_copy_of_its_markup_in_urllibs_cache():
    """st.iframe parses the markup as a URL first; urllib would keep the last 128 parses, each with a copy."""
    import urllib.parse

    urllib.parse.urlsplit.cache_clear()
    app = AppTest.from_function(_three_sliders).run()
    assert not app.exception and len(app.get("iframe")) == 3
    assert urllib.parse.urlsplit.cache_info().currsize < 3  # one entry per slider without the clearing


def test_the_main_page_gallery_shows_four_at_a_time_newest_first(app):
    """A long session keeps the main page quick: its gallery pages four results at a time (History shows
    them all), and every result stays reachable."""
    from services.images import preview
    from services.history import History
    from services.items import HistoryItem

    jpeg = preview(photo_bytes(), 64)
    history = History()
    for n in range(1, 10):
        history.add(HistoryItem(prompt=f"attempt {n}", image_type="jpeg", engine="offline", seconds=1.0,
                                source_name="mug.jpg", result=jpeg, before_preview=jpeg, after_preview=jpeg,
                                thumbnail=jpeg, size=(64, 48)))
    app.session_state["history"] = history
    app.run()
    opened = lambda: [b.key.rsplit(".", 1)[-1] for b in app.button if b.key and b.key.startswith("replace.gallery.open.")]
    ids = [item.id for item in history]  # newest first
    assert opened() == ids[:4]
    pager = app.segmented_control(key="replace.gallery.page")
    assert pager.label == "Page" and [option.content for option in pager.proto.options] == ["1–4", "5–8", "9–9"]
    pager.set_value(3).run()
    assert opened() == ids[8:]
    app.button(key=f"replace.gallery.open.{ids[8]}").click().run()
    assert app.session_state["replace.page"].opened == ids[8] and len(app.get("iframe")) == 1


def test_try_again_after_a_paid_reply_remakes_only_the_previews(app, novita_env, monkeypatch):
    """Novita answered (and was paid) but making the previews failed: Try again must not pay again."""
    from services import jobs

    finish, failures = jobs.finish, []

    def previews_fail_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("the previews could not be made")
        return finish(*args, **kwargs)

    monkeypatch.setattr(jobs, "finish", previews_fail_once)
    give_photo(app)
    replace(app)
    assert not app.exception and "Try again" in [b.label for b in app.button]
    assert len(novita_env.requests) == 1 and len(app.session_state["history"]) == 0
    app.button(key="replace.retry").click().run()
    assert not app.exception and not app.error
    assert len(app.session_state["history"]) == 1
    assert len(novita_env.requests) == 1  # the paid reply was used, not bought again
