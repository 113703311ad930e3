"""The photo in use follows what the inputs hold on every run, by file id, and is prepared once per file."""

from __future__ import annotations

from tests.conftest import photo_bytes


def test_a_file_and_a_press_in_the_same_run_make_a_result(app, novita_env):
    """Replace background's callback runs before the page draws the inputs, and still finds the photo."""
    app.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg"))
    app.text_area(key="prompt").input("in a warehouse")
    app.button(key="replace.run").click()
    app.run()
    assert not app.exception
    assert not [e for e in app.error if "Add a photo first" in e.value]
    assert len(app.session_state["history"]) == 1 and len(novita_env.requests) == 1


def test_the_photo_is_prepared_once_per_file_and_forgotten_when_removed(app):
    app.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    first = app.session_state["photo"]
    assert first.name == "mug.jpg"
    app.text_area(key="prompt").input("in a warehouse").run()
    app.run()
    assert app.session_state["photo"] is first  # reruns reuse it: nothing is prepared again
    app.file_uploader(key="upload").set_value(("vase.jpg", photo_bytes(colour=(20, 90, 200)), "image/jpeg")).run()
    assert app.session_state["photo"].name == "vase.jpg"
    app.file_uploader(key="upload").set_value(None).run()
    assert app.session_state["photo"] is None


def test_a_sample_is_followed_too_and_survives_a_page_visit(app):
    title = app.pills(key="sample").options[0]
    app.pills(key="sample").set_value(title).run()
    photo = app.session_state["photo"]
    assert photo is not None and photo.source == "sample"
    app.switch_page("views/history.py").run()
    app.switch_page("views/replace.py").run()
    assert app.session_state["photo"] is photo
