"""components.messages words what services say with a kind and its facts: refusals, notes, a run's steps;
and `jobs.retryable` is the one answer to whether Try again / Retry failed may help."""

from __future__ import annotations

import pickle

import pytest

from components import messages
from services import budget, images, jobs, novita, offline, quota
from services.errors import Refusal, note


@pytest.mark.parametrize(("error", "sentence"), [
    (images.ImageError("empty", file="a/b/photo.png", what="file"),
     "“photo.png” is empty (0 bytes). Choose the photo again, or export it again from its app."),
    (images.ImageError("damaged", file=None, what="image"),
     "This image can't be opened: it looks damaged or incomplete. Export or download it again, then retry."),
    (images.ImageError("too_many_pixels", file=None, what="file", width=9000, height=8000, limit=64_000_000),
     "This file is 9000 × 8000 pixels, more than the 64 megapixels this app can safely open. Resize it to "
     "2048 × 2048 pixels or less, then retry."),
    (jobs.Cancelled("cancelled_in_line"), "Cancelled while waiting; nothing was sent to Novita."),
    (jobs.Cancelled(), "Cancelled before it was sent; nothing was spent."),
    (offline.NoTransparency(), "JPEG has no transparency: choose PNG or WEBP for a transparent cut-out."),
    (novita.ConfigurationError("output format 'gif' is not one of …", image_types=novita.IMAGE_TYPES),
     "This app's Novita settings need fixing by its owner: Output format must be one of png, webp, jpeg."),
])
def test_a_refusal_is_worded_from_its_kind_and_facts(error, sentence):
    assert messages.describe(error, owner_key=False)[0] == sentence


def test_a_refusal_keeps_its_facts_through_pickling_and_logs_no_sentence():
    error = images.ImageError("too_big", file="big.jpg", what="file", size=40 * 2**20, limit=30 * 2**20)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.kind, again.facts) == (images.ImageError, "too_big", error.facts)
    assert str(error) == "too_big file='big.jpg' what='file' size=41943040 limit=31457280"
    assert isinstance(error, ValueError) and isinstance(error, Refusal)


@pytest.mark.parametrize(("said", "words"), [
    (note("prepared", width=640, height=480, format="jpeg"), "Prepared the photo: 640 × 480 JPEG"),
    (note("making", progress=40, eta=12.4), "Novita is making the new background: 40 %, about 12 s left"),
    (note("making"), "Novita is making the new background"),
    (note("sending", family="novita"), "Sending the photo to Novita"),
    (note("sending", family="cutout"), "Cutting out the subject"),
    (note("answered", family="offline", seconds=1.25), "Offline studio answered in 1.2 s"),
    (["scaled_down", {"width": 4000, "height": 3000, "to_width": 2048, "to_height": 1536, "limit": 2048}],
     "Your photo was scaled down from 4000 × 3000 to 2048 × 1536 pixels to fit the background service's "
     "2048 × 2048 limit."),  # as a kept result stores it (JSON)
    ("A sentence kept before notes were facts.", "A sentence kept before notes were facts."),
])
def test_a_note_is_worded_from_its_kind_and_facts(said, words):
    assert messages.note_sentence(said) == words


def test_the_stage_while_novita_works_is_a_state_with_its_numbers():
    assert jobs.novita_stage(novita.TaskState("QUEUED")) == note("queued")
    assert jobs.novita_stage(novita.TaskState("PROCESSING", 40, 12.0)) == note("making", progress=40, eta=12.0)


@pytest.mark.parametrize(("error", "retry"), [
    (None, False),
    (jobs.Cancelled(), True),  # nothing was sent: Retry failed sends it
    (RuntimeError("a bug"), True),
    (novita.ServerError(status=502, reason=None, message=None, request_id=None, kind="gateway", actor="person",
                        fix=""), True),
    (novita.BadRequestError(status=400, reason=None, message=None, request_id=None, kind="refused",
                            actor="person", fix=""), False),
    (novita.TaskFailedError("t", "content policy"), False),  # the same words would be refused again
    (images.ImageError("damaged", file=None, what="file"), False),
    (quota.Suspended(kind="key", seconds_left=60.0), False),
    (budget.BudgetExceeded(budget.SESSION, limit=3, left=0, needed=1), False),
])
def test_retryable_is_defined_once(error, retry):
    assert jobs.retryable(error) is retry
    if error is not None:
        assert messages.describe(error, owner_key=True)[1] is retry
