"""What a quick or hostile visitor does in a real browser: pick a big photo and type at once, put links and
direction overrides into names and prompts; and the slider's third-party script is pinned and checked."""

from __future__ import annotations

import io

from PIL import Image

from tests.e2e.conftest import RUN_TIMEOUT, expect, require_assets

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
