"""The app with its default settings, against the stand-in as Novita is today: Qwen-Image Edit through the task
API on the main page, Variants and Batch; the result fits the photo; the subject lock; the retired call."""

from __future__ import annotations

import io

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.messages import note_sentences
from services import recovery
from services.images import sniff_format
from tests.conftest import ROOT, photo_bytes
from tests.novita_stub import EDIT_PATH, PATH
from tests.test_access_and_spend import sent, status_labels  # noqa: F401 - `sent` is a fixture
from tests.test_batch import photos, run_batch


@pytest.fixture
def at(edit_env) -> AppTest:
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    return app


def big_photo(size=(1600, 1200)) -> bytes:
    """A photo bigger than the model's megapixel: a textured subject on a plain background."""
    rng = np.random.default_rng(7)
    pixels = np.full((size[1], size[0], 3), 236, np.uint8)
    w, h = size
    subject = rng.integers(40, 200, (h // 2, w // 3, 3), dtype=np.uint8)
    pixels[h // 4: h // 4 + h // 2, w // 3: w // 3 + w // 3] = subject
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def run_replace(at: AppTest, prompt="in a warehouse", fmt="PNG", data=None, lock=True) -> AppTest:
    at.file_uploader(key="upload").set_value(("mug.png", data or photo_bytes(), "image/png"))
    at.run()
    if lock is not None:
        at.checkbox(key="replace.lock").set_value(lock)
    at.text_area(key="prompt").input(prompt)
    at.radio(key="format").set_value(fmt)
    at.button(key="replace.run").click()
    return at.run()


def only_item(at: AppTest):
    (item,) = list(at.session_state["history"])
    return item


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_a_run_goes_through_qwen_image_edit_and_fits_the_photo(at, edit_env, fmt, sent):
    run_replace(at, "on a marble counter, soft light", fmt)
    assert not at.exception and not at.error
    item = only_item(at)
    assert sniff_format(item.result) == fmt.lower() and item.size == (640, 480)
    assert Image.open(io.BytesIO(item.result)).size == (640, 480)  # the model answered at about 1 MP
    posts = [r for r in edit_env.requests if r.method == "POST"]
    assert [r.path for r in posts] == [EDIT_PATH]
    assert posts[0].json["output_format"] == fmt.lower()
    assert "on a marble counter, soft light" in posts[0].json["prompt"]
    assert f"Download {fmt}" in [b.proto.label for b in at.get("download_button")]
    assert len(at.get("iframe")) == 1
    labels = status_labels(sent)
    assert any("Novita" in label for label in labels), labels  # progress, not a bare spinner
    assert at.session_state["account"].images == 1


def test_progress_says_queued_then_how_far_novita_got(at, edit_env, sent):
    edit_env.latency = 4.0
    run_replace(at)
    assert not at.error
    labels = " | ".join(status_labels(sent))
    assert "Novita is making the new background" in labels or "Queued at Novita" in labels, labels


def test_with_the_lock_the_subjects_pixels_are_the_photos_own(at, edit_env):
    photo = big_photo()
    run_replace(at, data=photo, lock=True)
    item = only_item(at)
    assert Image.open(io.BytesIO(item.result)).size == (1600, 1200)
    original, result = decoded(photo), decoded(item.result)
    inside = (slice(300 + 8, 900 - 8), slice(533 + 8, 1066 - 8))  # the subject, a few pixels in
    assert np.percentile(np.abs(result[inside] - original[inside]), 99) <= 3
    captions = " ".join(note_sentences(item.notices))
    assert "lower resolution" in captions and "photo's own" in captions


def test_without_the_lock_the_download_is_the_models_image(at, edit_env):
    photo = big_photo()
    run_replace(at, data=photo, lock=False)
    item = only_item(at)
    original, result = decoded(photo), decoded(item.result)
    inside = (slice(300 + 8, 900 - 8), slice(533 + 8, 1066 - 8))
    assert np.abs(result[inside] - original[inside]).mean() > 3  # the model's redraw shows
    assert "photo's own" not in " ".join(note_sentences(item.notices))


def test_a_subject_the_model_moved_is_kept_as_the_model_made_it_and_said(at, edit_env):
    edit_env.script("moved-subject")
    run_replace(at, data=big_photo(), lock=True)
    assert "moved or resized the subject" in " ".join(note_sentences(only_item(at).notices))


def test_the_result_keeps_the_task_id_as_its_history_id(at, edit_env):
    run_replace(at)
    task_id = edit_env.requests[1].path.split("task_id=")[1]  # the first poll names it
    assert only_item(at).id == recovery.item_id(task_id)


def test_a_failed_task_tells_the_person_and_keeps_everything(at, edit_env):
    edit_env.script("task-failed")
    run_replace(at, "in a warehouse")
    errors = " ".join(str(e.value) for e in at.error)
    assert "Novita could not make this image on its side" in errors and "Try again" in errors
    assert at.text_area(key="prompt").value == "in a warehouse"
    assert at.session_state["account"].images == 1  # accepted: counted (see jobs.send)


def test_variants_run_through_the_edit_model(at, edit_env):
    at.switch_page("views/variants.py").run()
    at.file_uploader(key="upload").set_value(("mug.jpg", photo_bytes(), "image/jpeg")).run()
    assert at.checkbox(key="variants.lock").value is True
    for i, prompt in enumerate(["in a warehouse", "on a beach"]):
        at.text_input(key=f"variants.prompt{i}").input(prompt)
    at.button(key="variants.start").click().run()
    assert not at.exception and not at.error
    assert len(at.session_state["history"]) == 2
    assert sum(r.path == EDIT_PATH for r in edit_env.requests) == 2


def test_batch_runs_through_the_edit_model(at, edit_env):
    run_batch(at, photos(3))
    assert not at.exception and not at.error
    assert at.checkbox(key="batch.lock").value is True
    history = list(at.session_state["history"])
    assert len(history) == 3
    assert all(Image.open(io.BytesIO(item.result)).size == item.size for item in history)  # each fits its photo
    assert sum(r.path == EDIT_PATH for r in edit_env.requests) == 3


def test_the_retired_call_is_told_as_retired_and_automatic_falls_back(edit_env, monkeypatch, caplog):
    monkeypatch.setenv("NOVITA_MODEL", "replace-background")
    monkeypatch.setenv("NOVITA_OWNER_PAUSE_SECONDS", "300")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    run_replace(at, lock=None)
    assert not at.get("checkbox") or all(c.key != "replace.lock" for c in at.checkbox)  # the seed's call redraws nothing
    errors = " ".join(str(e.value) for e in at.error)
    assert "photographic engine is not available right now" in errors
    for wrong in ("address", "photo is", "prompt is refused", "rephrase"):
        assert wrong not in errors.lower()
    assert any("Novita retired this model on 2026-07-22; set NOVITA_MODEL=qwen-image-edit" in r.getMessage()
               for r in caplog.records)
    assert [r.path for r in edit_env.requests] == [PATH]
    # the owner's key is paused: Automatic now makes results with the offline studio
    at.button(key="replace.run").click()
    at.run()
    assert not at.error
    assert only_item(at).engine == "offline"
    assert [r.path for r in edit_env.requests] == [PATH]


def test_a_pasted_key_shows_that_accounts_balance_and_never_the_key(at, edit_env):
    own = "sk_person_own_key_1234567890"
    edit_env.balance = 123_4500  # $123.45 in Novita's 1/10,000 USD
    at.sidebar.text_input(key="key_field").input(own).run()
    shown = " ".join(str(c.value) for c in at.sidebar.caption)
    assert "$123.45" in shown and own not in shown
    reads = [r for r in edit_env.requests if r.path == "/openapi/v1/billing/balance/detail"]
    assert len(reads) == 1 and reads[0].headers["Authorization"] == f"Bearer {own}"
    at.run()
    assert len([r for r in edit_env.requests if r.path.startswith("/openapi/")]) == 1  # read once, then kept


def test_try_again_after_the_wait_ran_out_collects_the_same_task_without_paying_again(edit_env, monkeypatch):
    monkeypatch.setenv("NOVITA_TIMEOUT", "3")
    edit_env.latency = 3.6  # longer than the app waits: the first wait runs out, the task goes on at Novita
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    run_replace(at)
    errors = " ".join(str(e.value) for e in at.error)
    assert "did not finish the image within 3 s" in errors
    at.button(key="replace.retry").click().run()
    assert not at.error, [str(e.value) for e in at.error]
    assert len(at.session_state["history"]) == 1
    assert len(edit_env.posts()) == 1 and at.session_state["account"].images == 1  # collected, not bought again
