"""The loopback stand-in's async Qwen-Image Edit API (tests/novita_tasks.py), spoken over real HTTP: a task's
timeline, its image links and their expiry, the encodings of `image` it accepts, and each fault that makes it
as awkward as the live service can be."""

from __future__ import annotations

import base64
import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image, ImageChops

from tests.novita_stub import (
    EDIT_PATH,
    FAULTS,
    IMAGE_PREFIX,
    JSON_ERRORS,
    PATH,
    RESULT_PATH,
    Fault,
    NovitaStub,
    main,
    render_edit,
)

pytestmark = pytest.mark.timeout(30)

KEY = "sk_test_5f1d9a7c2b8e4f60a1d3c5e7b9f2a4c6"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPT = "put the subject in a warehouse"


def photo(size=(640, 480), fmt="PNG") -> bytes:
    """A photo with detail everywhere: gradients and noise, so no two regions look alike."""
    w, h = size
    grad = Image.linear_gradient("L").resize(size)
    other = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    buf = io.BytesIO()
    Image.merge("RGB", (grad, other, noise)).save(buf, fmt)
    return buf.getvalue()


PHOTO = photo()


def solid(size=(640, 480), colour=(200, 60, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


def data_uri(raw: bytes, fmt="png") -> str:
    return f"data:image/{fmt};base64,{base64.b64encode(raw).decode()}"


def submit(stub, image: str | None = None, *, headers=AUTH, **fields) -> requests.Response:
    body = {"prompt": PROMPT, "image": data_uri(PHOTO) if image is None else image, **fields}
    return requests.post(stub.base_url + EDIT_PATH, json=body, headers=headers, timeout=10)


def poll(stub, task_id: str | None, *, headers=AUTH) -> requests.Response:
    params = {} if task_id is None else {"task_id": task_id}
    return requests.get(stub.base_url + RESULT_PATH, params=params, headers=headers, timeout=10)


def task_of(stub, **fields) -> str:
    r = submit(stub, **fields)
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def until(stub, task_id: str, statuses: set[str], deadline: float = 3.0) -> dict:
    """Poll until the task's status is one of `statuses`; the last reply."""
    end = time.monotonic() + deadline
    while True:
        body = poll(stub, task_id).json()
        if body["task"]["status"] in statuses or time.monotonic() > end:
            return body
        time.sleep(0.03)


def fetch(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)


def sniff(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def differs_everywhere(out: Image.Image, photo: Image.Image) -> bool:
    """Whether no pixel inside the border (min side // 8) equals the photo's at the same place."""
    w, h = out.size
    b = min(w, h) // 8
    box = (b, b, w - b, h - b)
    diff = ImageChops.difference(out.convert("RGB").crop(box), photo.convert("RGB").crop(box))
    most = ImageChops.lighter(ImageChops.lighter(*diff.split()[:2]), diff.getchannel("B"))
    return most.getextrema()[0] > 0


def shift(stub, task_id: str, seconds: float) -> None:
    """Move a task `seconds` further along its timeline."""
    stub.tasks[task_id].created -= seconds


@pytest.fixture(scope="module")
def server():
    with NovitaStub(seed_retired=False) as stub:  # a gateway that still serves the seed's call
        yield stub


@pytest.fixture
def stub(server):
    server.reset()
    server.latency = 0.3
    yield server
    server.reset()
    server.latency = 0.0


def test_a_task_is_queued_then_processing_then_succeeds_with_a_fetchable_image(stub):
    r = submit(stub, output_format="png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"task_id"} and len(body["task_id"]) == 32
    task_id = body["task_id"]
    seen, processing = [], []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        reply = poll(stub, task_id).json()
        task = reply["task"]
        assert task["task_id"] == task_id and task["task_type"] == "QWEN_IMAGE_EDIT"
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] == "TASK_STATUS_PROCESSING":
            processing.append(task)
        if task["status"] == "TASK_STATUS_SUCCEED":
            break
        assert reply["images"] == [] and task["eta"] >= 0
        time.sleep(0.02)
    order = ["TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING", "TASK_STATUS_SUCCEED"]
    assert seen == sorted(seen, key=order.index) and seen[-2:] == order[1:]
    assert all(1 <= t["progress_percent"] <= 99 and t["eta"] >= 0 for t in processing)
    assert [t["progress_percent"] for t in processing] == sorted(t["progress_percent"] for t in processing)
    task = reply["task"]
    assert (task["reason"], task["eta"], task["progress_percent"]) == ("", 0, 100)
    assert reply["extra"]["seed"].isdigit() and set(reply["extra"]["debug_info"]) == {
        "submit_time_ms", "execute_time_ms", "complete_time_ms"}
    [image] = reply["images"]
    assert image["image_url_ttl"] == 3600 and image["image_type"] == "png" and image["nsfw_detection_result"] is None
    url = urlsplit(image["image_url"])
    assert f"{url.scheme}://{url.netloc}" == stub.base_url and url.path.startswith(IMAGE_PREFIX)
    assert url.path.endswith(".png") and int(parse_qs(url.query)["X-Expires"][0]) > time.time() + 3500
    got = fetch(image["image_url"])
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    out = sniff(got.content)
    w, h = out.size
    assert out.format == "PNG" and w % 16 == 0 and h % 16 == 0
    assert abs(w * h - 1024 * 1024) < 0.05 * 1024 * 1024 and abs(w / h - 4 / 3) < 0.03
    # the model redrew every pixel: inside the repainted border, none is the photo's own at that place
    assert differs_everywhere(out, sniff(PHOTO).resize(out.size, Image.Resampling.BICUBIC))


def test_the_timeline_by_elapsed_time(stub):
    stub.latency = 10.0
    task_id = task_of(stub)
    task = poll(stub, task_id).json()["task"]
    assert (task["status"], task["progress_percent"]) == ("TASK_STATUS_QUEUED", 0) and task["eta"] in (9, 10)
    shift(stub, task_id, 5)
    task = poll(stub, task_id).json()["task"]
    assert task["status"] == "TASK_STATUS_PROCESSING" and 20 < task["progress_percent"] < 50 and task["eta"] in (4, 5)
    shift(stub, task_id, 4.5)
    task = poll(stub, task_id).json()["task"]
    assert task["status"] == "TASK_STATUS_PROCESSING" and 90 < task["progress_percent"] <= 99 and task["eta"] == 1
    shift(stub, task_id, 0.6)
    reply = poll(stub, task_id).json()
    assert reply["task"]["status"] == "TASK_STATUS_SUCCEED" and len(reply["images"]) == 1


def test_the_post_answers_at_once_whatever_the_latency(stub):
    stub.latency = 30.0
    started = time.monotonic()
    assert submit(stub).status_code == 200
    assert time.monotonic() - started < 5  # a bound far from 30 s, not a timing measurement


def test_each_read_of_a_finished_task_issues_a_new_link_and_every_link_works(stub):
    stub.latency = 0.0
    task_id = task_of(stub)
    urls = [until(stub, task_id, {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"] for _ in range(3)]
    assert len(set(urls)) == 3 and len({urlsplit(u).path for u in urls}) == 3
    bodies = {fetch(u).content for u in urls}
    assert len(bodies) == 1  # rendered once, served from every link
    assert sniff(bodies.pop()).format == "JPEG"  # the default output_format


def test_an_expired_link_is_refused_and_a_fresh_read_gives_a_working_one(stub):
    stub.latency, stub.image_url_ttl = 0.0, 1
    task_id = task_of(stub)
    image = until(stub, task_id, {"TASK_STATUS_SUCCEED"})["images"][0]
    assert image["image_url_ttl"] == 1
    expires = int(parse_qs(urlsplit(image["image_url"]).query)["X-Expires"][0])
    while time.time() < expires + 0.05:
        time.sleep(0.05)
    got = fetch(image["image_url"])
    assert got.status_code == 403 and got.headers["Content-Type"] == "application/xml"
    assert got.content == b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    fresh = poll(stub, task_id).json()["images"][0]["image_url"]
    assert fresh != image["image_url"] and fetch(fresh).status_code == 200


def test_a_link_needs_no_key_refuses_one_and_the_stub_keeps_its_headers(stub):
    stub.latency = 0.0
    url = until(stub, task_of(stub), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    assert fetch(url, headers={"X-Trace": "one"}).status_code == 200
    refused = fetch(url, headers={**AUTH, "X-Trace": "two"})
    assert refused.status_code == 400 and b"<Code>InvalidArgument</Code>" in refused.content
    first, second = stub.image_fetches()
    assert first.headers["X-Trace"] == "one" and "Authorization" not in first.headers
    assert second.headers["Authorization"] == AUTH["Authorization"] and "redacted" in repr(second.headers)
    # the link is the whole credential: without its query, or for a key never issued, there is no image
    bare = urlsplit(url)._replace(query="").geturl()
    assert fetch(bare).status_code == 403
    unknown = fetch(f"{stub.base_url}{IMAGE_PREFIX}{'0' * 32}.jpeg")
    assert unknown.status_code == 404 and b"<Code>NoSuchKey</Code>" in unknown.content


def test_the_counters_for_tests(stub):
    stub.latency = 0.0
    a, b = task_of(stub), task_of(stub)
    for _ in range(2):
        poll(stub, a)
    url = poll(stub, b).json()["images"][0]["image_url"]
    fetch(url)
    assert submit(stub, prompt="").status_code == 400  # refused: not a task
    assert stub.tasks_submitted() == 2 and set(stub.tasks) == {a, b}
    assert (stub.polls(), stub.polls(a), stub.polls(b), stub.polls("nope")) == (3, 2, 1, 0)
    assert [urlsplit(r.path).path for r in stub.image_fetches()] == [urlsplit(url).path]
    stub.reset()
    assert (stub.tasks_submitted(), stub.polls(), stub.image_fetches()) == (0, 0, [])
    assert poll(stub, a).status_code == 404


@pytest.mark.parametrize(("forms", "accepted", "refused"), [({"raw"}, "raw", "data"), ({"data"}, "data", "raw")])
def test_each_image_encoding_restriction_refuses_the_other(stub, forms, accepted, refused):
    stub.image_forms = forms
    sent = {"data": data_uri(PHOTO), "raw": base64.b64encode(PHOTO).decode()}
    no = submit(stub, image=sent[refused])
    assert no.status_code == 400
    assert no.json()["reason"] == "INVALID_REQUEST_BODY" and "image encoding" in no.json()["message"]
    assert submit(stub, image=sent[accepted]).status_code == 200
    assert [r.edit.form for r in stub.requests] == [refused, accepted]
    assert stub.requests[1].edit[:3] == ("PNG", (640, 480), "RGB")
    stub.reset()
    assert stub.image_forms == {"data", "raw"}


def test_both_encodings_are_accepted_by_default(stub):
    assert submit(stub, image=base64.b64encode(PHOTO).decode()).status_code == 200
    assert submit(stub, image=data_uri(PHOTO)).status_code == 200


@pytest.mark.parametrize(("fields", "words"), [
    ({"prompt": ""}, "prompt"),
    ({"prompt": None}, "prompt"),
    ({"image": ""}, "image"),
    ({"image": 12}, "image"),
    ({"seed": True}, "seed"),
    ({"seed": -2}, "seed"),
    ({"seed": 2147483648}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"output_format": "gif"}, "output_format"),
    ({"image": "data:image/png;base64,!!!"}, "base64"),
    ({"image": "data:text/plain,hello"}, "image encoding"),
    ({"image": base64.b64encode(b"not an image").decode()}, "not a supported image"),
    ({"image": data_uri(photo((4100, 16)))}, "4096"),
])
def test_a_malformed_edit_is_refused(stub, fields, words):
    r = submit(stub, **fields)
    assert r.status_code == 400
    body = r.json()
    assert (body["code"], body["reason"], body["metadata"]) == (400, "INVALID_REQUEST_BODY", {})
    assert words in body["message"]
    assert stub.tasks_submitted() == 0


def test_a_good_seed_and_format_are_kept(stub):
    stub.latency = 0.0
    task_id = task_of(stub, seed=42, output_format="webp")
    reply = until(stub, task_id, {"TASK_STATUS_SUCCEED"})
    assert reply["extra"]["seed"] == "42" and reply["images"][0]["image_type"] == "webp"
    got = fetch(reply["images"][0]["image_url"])
    assert got.headers["Content-Type"] == "image/webp" and sniff(got.content).format == "WEBP"


def test_keys_are_checked_on_submit_and_poll():
    with NovitaStub(valid_keys={KEY}, seed_retired=False) as stub:
        assert submit(stub, headers={}).json()["reason"] == "MISSING_API_KEY"
        wrong = submit(stub, headers={"Authorization": "Bearer sk_other"})
        assert wrong.status_code == 403 and wrong.json()["reason"] == "INVALID_API_KEY"
        task_id = task_of(stub)
        assert poll(stub, task_id, headers={}).status_code == 400
        assert poll(stub, task_id, headers={"Authorization": "Bearer sk_other"}).status_code == 403
        assert poll(stub, task_id).status_code == 200


def test_a_result_read_needs_a_known_task_id(stub):
    missing = poll(stub, None)
    assert missing.status_code == 400 and missing.json()["reason"] == "INVALID_REQUEST_BODY"
    unknown = poll(stub, "f" * 32)
    assert unknown.status_code == 404
    assert unknown.json() == {"code": 404, "reason": "TASK_NOT_FOUND", "message": "task not found", "metadata": {}}


@pytest.mark.parametrize("message", [None, "NSFW content detected"])
def test_task_failed_ends_failed_with_a_reason_and_no_image(stub, message):
    stub.script(Fault("task-failed", message=message))
    task_id = task_of(stub)
    reply = until(stub, task_id, {"TASK_STATUS_FAILED", "TASK_STATUS_SUCCEED"})
    assert reply["task"]["status"] == "TASK_STATUS_FAILED" and reply["images"] == []
    assert reply["task"]["reason"] == (message or "The image could not be generated, please try again.")


def test_task_stuck_never_ends_and_its_progress_freezes(stub):
    stub.script("task-stuck")
    task_id = task_of(stub)
    time.sleep(0.5)  # past the task's 0.3 s
    first = poll(stub, task_id).json()
    shift(stub, task_id, 3600)
    later = poll(stub, task_id).json()
    for reply in (first, later):
        assert reply["task"]["status"] == "TASK_STATUS_PROCESSING" and reply["images"] == []
        assert reply["task"]["eta"] == 0
    assert first["task"]["progress_percent"] == later["task"]["progress_percent"] < 99


def test_link_expired_gives_dead_links_on_every_read(stub):
    stub.latency = 0.0
    stub.script("link-expired")
    task_id = task_of(stub)
    for _ in range(2):
        image = until(stub, task_id, {"TASK_STATUS_SUCCEED"})["images"][0]
        assert image["image_url_ttl"] == 3600  # it says an hour; the link is dead already
        got = fetch(image["image_url"])
        assert got.status_code == 403 and b"Request has expired" in got.content


def test_link_expired_once_gives_one_dead_link_then_working_ones(stub):
    stub.latency = 0.0
    stub.script("link-expired-once")
    task_id = task_of(stub)
    first = until(stub, task_id, {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    assert fetch(first).status_code == 403
    second = poll(stub, task_id).json()["images"][0]["image_url"]
    assert fetch(second).status_code == 200


@pytest.mark.parametrize("message", [None, "https://evil.example/objects/x.png"])
def test_foreign_url_names_another_host(stub, message):
    stub.latency = 0.0
    stub.script(Fault("foreign-url", message=message))
    url = until(stub, task_of(stub), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    port = urlsplit(stub.base_url).port
    if message:
        assert url == message
    else:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == ("127.0.0.2", port) and parts.path.startswith(IMAGE_PREFIX)


def test_redirect_at_image_answers_302_elsewhere(stub):
    stub.latency = 0.0
    stub.script(Fault("redirect", at="image"))
    url = until(stub, task_of(stub), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    got = fetch(url, allow_redirects=False)
    port = urlsplit(stub.base_url).port
    assert got.status_code == 302 and got.headers["Location"] == f"http://127.0.0.2:{port}/objects/x.png"
    assert fetch(url).status_code == 200  # once only
    stub.script(Fault("redirect", at="image", message="http://example.invalid/a.png"))
    assert fetch(url, allow_redirects=False).headers["Location"] == "http://example.invalid/a.png"


def test_huge_image_promises_31_mib_and_streams_it(stub):
    stub.latency = 0.0
    stub.script(Fault("huge-image", at="image"))
    url = until(stub, task_of(stub), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    with fetch(url, stream=True) as got:
        assert got.status_code == 200 and got.headers["Content-Length"] == str(31 * 1024 * 1024)
        assert got.headers["Content-Type"] == "image/jpeg"
        head = got.raw.read(1024 * 1024)
        assert len(head) == 1024 * 1024 and head.startswith(b"\xff\xd8")
    # the client hung up mid-body; the stand-in carries on serving
    assert fetch(url).status_code == 200


def test_same_size_keeps_the_photos_size_and_still_redraws_every_pixel(stub):
    stub.latency = 0.0
    stub.script("same-size")
    url = until(stub, task_of(stub, output_format="png"), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    out = sniff(fetch(url).content).convert("RGB")
    src = sniff(PHOTO).convert("RGB")
    assert out.size == src.size == (640, 480)
    assert differs_everywhere(out, src)


@pytest.mark.parametrize(("fault", "subject"), [("recoloured-subject", "recoloured"), ("moved-subject", "moved")])
def test_subject_faults_render_that_subject(stub, fault, subject):
    stub.latency = 0.0
    stub.script(fault)
    url = until(stub, task_of(stub, output_format="png"), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    expected = render_edit(sniff(PHOTO), PROMPT, "png", subject=subject)
    assert fetch(url).content == expected


def test_render_edit_models_an_instruction_editor():
    src = solid()
    for size in [(640, 480), (4000, 3000)]:
        out = sniff(render_edit(solid(size), PROMPT, "png"))
        assert out.size == (1184, 880)
    assert sniff(render_edit(src, PROMPT, "jpeg", size=(320, 240))).size == (320, 240)
    kept = sniff(render_edit(src, PROMPT, "png", size=(640, 480))).convert("RGB")
    recoloured = sniff(render_edit(src, PROMPT, "png", size=(640, 480), subject="recoloured")).convert("RGB")
    moved = sniff(render_edit(src, PROMPT, "png", size=(640, 480), subject="moved")).convert("RGB")
    other = sniff(render_edit(src, "on a beach", "png", size=(640, 480))).convert("RGB")
    assert kept.getpixel((320, 240)) == (200, 66, 40)  # the photo's colour, one channel six levels up
    assert recoloured.getpixel((320, 240)) == (40, 206, 60)  # R -> G -> B, in place
    border = kept.getpixel((5, 5))
    assert border != other.getpixel((5, 5)) and border == recoloured.getpixel((5, 5)) == moved.getpixel((5, 5))
    # moved: the subject, smaller, sits at the left; where its right part was is now the prompt's colour
    assert moved.getpixel((150, 240)) == (200, 66, 40) and moved.getpixel((520, 240)) == border
    assert kept.getpixel((520, 240)) == (200, 66, 40)
    with pytest.raises(ValueError):
        render_edit(src, PROMPT, "png", subject="gone")


def test_a_wide_photo_keeps_its_aspect_at_a_megapixel():
    out = sniff(render_edit(solid((1600, 400)), PROMPT, "webp"))
    w, h = out.size
    assert w % 16 == 0 and h % 16 == 0 and abs(w / h - 4) < 0.1 and abs(w * h - 1024 * 1024) < 60_000


def test_faults_wait_for_their_kind_of_request(stub):
    stub.latency = 0.0
    task_id = task_of(stub)
    stub.script(Fault("503", at="poll"), Fault("CREATE_TASK_FAILED", at="submit"))
    r = submit(stub)  # skips the poll's fault, takes its own
    assert r.status_code == 500 and r.json()["reason"] == "CREATE_TASK_FAILED"
    assert poll(stub, task_id).status_code == 503
    assert poll(stub, task_id).status_code == 200  # both used up
    # an untargeted fault is taken by the next request of any kind, as before
    stub.script("500")
    assert poll(stub, task_id).status_code == 500
    # a standing fault with a kind applies to that kind only
    stub.always(Fault("502", at="image"))
    url = poll(stub, task_id).json()["images"][0]["image_url"]
    assert fetch(url).status_code == 502 and submit(stub).status_code == 200
    with pytest.raises(ValueError):
        Fault("500", at="download")


def test_json_errors_on_submit_answer_as_the_seed_path_does(stub):
    for name in ("410", "MODEL_NOT_FOUND", "429"):
        stub.script(name)
        r = submit(stub)
        status, reason, message = JSON_ERRORS[name]
        assert r.status_code == status and r.json() == {"code": status, "reason": reason, "message": message,
                                                          "metadata": {}}
    assert r.headers["Retry-After"] == "1"
    assert JSON_ERRORS["410"] == (410, "MODEL_DEPRECATED", "this model has been retired")
    assert stub.tasks_submitted() == 0


def test_bad_200_on_an_image_fetch_is_a_bad_image(stub):
    stub.latency = 0.0
    url = until(stub, task_of(stub), {"TASK_STATUS_SUCCEED"})["images"][0]["image_url"]
    stub.script(Fault("not-an-image", at="image"), Fault("truncated-image", at="image"))
    for _ in range(2):
        got = fetch(url)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
        with pytest.raises(Exception):  # noqa: B017 - unreadable, whatever PIL calls it
            sniff(got.content)


def test_other_type_on_submit_delivers_another_format_than_asked(stub):
    stub.latency = 0.0
    stub.script("other-type")
    image = until(stub, task_of(stub, output_format="jpeg"), {"TASK_STATUS_SUCCEED"})["images"][0]
    assert image["image_type"] == "png" and sniff(fetch(image["image_url"]).content).format == "PNG"


def seed_post(stub) -> requests.Response:
    body = {"image_file": base64.b64encode(PHOTO).decode(), "prompt": PROMPT}
    return requests.post(stub.base_url + PATH, json=body, headers=AUTH, timeout=10)


def test_the_retired_seed_answers_404_model_not_found(stub):
    stub.latency = 0.0
    assert seed_post(stub).status_code == 200
    stub.seed_retired = True
    r = seed_post(stub)
    assert r.status_code == 404 and r.json() == {
        "code": 404, "reason": "MODEL_NOT_FOUND", "message": "model replace-background has been retired",
        "metadata": {}}
    assert submit(stub).status_code == 200  # the edit API lives on
    stub.reset()
    assert stub.seed_retired is False and seed_post(stub).status_code == 200
    stub.script("retired")
    assert seed_post(stub).status_code == 404 and seed_post(stub).status_code == 200


def test_a_stub_made_retired_stays_retired_across_resets():
    with NovitaStub(seed_retired=True, image_forms={"raw"}, image_url_ttl=60) as stub:
        stub.seed_retired, stub.image_forms, stub.image_url_ttl = False, {"data"}, 5
        stub.reset()
        assert (stub.seed_retired, stub.image_forms, stub.image_url_ttl) == (True, {"raw"}, 60)
        assert seed_post(stub).json()["reason"] == "MODEL_NOT_FOUND"
        task_id = task_of(stub, image=base64.b64encode(PHOTO).decode())
        assert poll(stub, task_id).json()["images"][0]["image_url_ttl"] == 60


def test_the_new_faults_are_known_by_name_and_offered_by_the_command_line(capsys):
    new = {"task-failed", "task-stuck", "link-expired", "link-expired-once", "foreign-url", "redirect",
           "huge-image", "same-size", "recoloured-subject", "moved-subject", "retired", "410", "MODEL_NOT_FOUND"}
    assert new <= FAULTS
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())
    assert all(name in usage for name in new) and "--seed-served" in usage and "how long each task takes" in usage
