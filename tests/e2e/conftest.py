"""Browser tests: the real app in its own process, driven by Debian's Chromium through Playwright.

One app process per configuration (Novita stand-in with a key, offline with no key, a refused plain-http
address), each started the first time a test asks for it and shared by the session; one browser for the
session and a fresh context per test. Juxtapose, which the slider loads from a CDN, is served from
tests/e2e/node_modules; every other request that would leave this machine is aborted. Where the browser or
those assets are missing the tests skip, except on CI (`CI` set), where they fail with the reason.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.conftest import ROOT

# On CI (any non-empty `CI`), a browser test that cannot run fails the run with the reason; elsewhere it skips.
ON_CI = bool(os.environ.get("CI", "").strip())


def _cannot_run(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason}. CI must run the browser tests, so this fails instead of skipping.",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as playwright_sync
except ImportError:
    _cannot_run("Playwright is not installed (pip install -r requirements-dev.txt)")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
JUXTAPOSE_PACKAGE = Path(__file__).resolve().parent / "node_modules" / "juxtaposejs"
JUXTAPOSE = JUXTAPOSE_PACKAGE / "build"
JUXTAPOSE_FILES = {"juxtapose.min.js": ("js/juxtapose.min.js", "application/javascript"),
                   "juxtapose.css": ("css/juxtapose.css", "text/css")}
ARTIFACTS = ROOT / "artifacts"
# A distinctive owner key: tests look for it everywhere it must not be.
E2E_KEY = "sk_e2e_owner_key_DO_NOT_SHOW_7f3a9c1b5d2e"
# Settings the app reads from the environment: none leaks in from the machine running the tests.
APP_SETTINGS = ("NOVITA_", "STREAMLIT_", "APP_PASSWORD", "MAX_IMAGES_PER_SESSION", "RATE_LIMIT_", "HISTORY_", "AWS_")
HEALTH_TIMEOUT = 60.0
RUN_TIMEOUT = 30_000  # ms: one run of the stand-in or the offline engine, with room on a busy machine
VIEWPORT = {"width": 1280, "height": 1000}
EXCEPTION = '[data-testid="stException"]'
EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
FORMATS = {"PNG": ("PNG", "png"), "WEBP": ("WEBP", "webp"), "JPEG": ("JPEG", "jpg")}  # label: (PIL, ext)


def require_assets() -> None:
    """Skip the calling test module when the browser or the juxtapose assets are not installed; on CI, fail."""
    if not CHROMIUM.exists():
        _cannot_run("Debian's chromium is not installed at /usr/bin/chromium (scripts/test.sh installs it)")
    missing = [name for name, (rel, _) in JUXTAPOSE_FILES.items() if not (JUXTAPOSE / rel).exists()]
    if missing:
        _cannot_run(f"tests/e2e/node_modules/juxtaposejs is missing ({', '.join(missing)}); run "
                    "`bash scripts/test.sh` (it runs `npm install` in tests/e2e) to get the slider's assets")


def juxtapose_version() -> str:
    """The juxtaposejs version installed in tests/e2e/node_modules."""
    return json.loads((JUXTAPOSE_PACKAGE / "package.json").read_text())["version"]


# --------------------------------------------------------------------------------------------- the app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    """`streamlit run app.py` in its own process, with its output captured in a file."""

    name: str
    env: dict[str, str]
    log_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> AppServer:
        self.port = _free_port()
        self.log_path = self.log_dir / f"app-{self.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(APP_SETTINGS)}
        # The shared key's per-minute budget has its own tests; here it must not make the suite wait.
        env.update(PYTHONUNBUFFERED="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
                   NOVITA_RATE_LIMIT_PER_MINUTE="1000", **self.env)
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               # others edit the sources while the suite runs: no "File change. Rerun?" prompts mid-test
               "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"app {self.name} not healthy after {HEALTH_TIMEOUT:.0f} s:\n{self.log()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop our own process by its PID: terminate, wait, kill if it does not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self, start: int = 0) -> str:
        """The captured stdout+stderr from byte `start` on."""
        with self.log_path.open("rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size


_SERVERS: list[AppServer] = []


def _serve(request, name: str, env: dict[str, str]) -> AppServer:
    # pytest's own temporary folder (kept for the last few runs): runs side by side never share a log
    log_dir = request.getfixturevalue("tmp_path_factory").mktemp(f"app-{name}")
    env = {"HISTORY_STORE_DIR": str(log_dir / "history"), **env}  # each app keeps its results apart
    server = AppServer(name, env, log_dir).start()
    _SERVERS.append(server)
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def app_novita(request, stub_server) -> AppServer:
    """The app with the owner key set and Novita at the loopback stand-in; a 3 s read timeout. No pause
    after an owner-side refusal: tests that script one must not hold back the rest of the suite (the pause
    has its own server in test_errors.py)."""
    return _serve(request, "novita", {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": stub_server.base_url,
                                      "NOVITA_TIMEOUT": "3", "NOVITA_OWNER_PAUSE_SECONDS": "0",
                                      "NOVITA_MODEL": "replace-background"})


@pytest.fixture(scope="session")
def app_edit(request, edit_server) -> AppServer:
    """The app with the owner key and its default settings (Qwen-Image Edit), against the stand-in as Novita
    is today: the seed's call retired, the task API live."""
    return _serve(request, "edit", {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": edit_server.base_url,
                                    "NOVITA_OWNER_PAUSE_SECONDS": "0"})


@pytest.fixture(scope="session")
def app_offline(request, stub_server) -> AppServer:
    """The app with no key at all: Automatic means the offline studio. The stand-in is its base URL, so
    any request it wrongly made would be seen."""
    return _serve(request, "offline", {"NOVITA_BASE_URL": stub_server.base_url})


@pytest.fixture(scope="module")
def app_alone(request, stub_server) -> AppServer:
    """The app as `app_novita` sets it up, in a process of its own for one test module: the memory and CPU
    that process uses are that module's doing alone."""
    return _serve(request, f"alone-{request.module.__name__.rsplit('.', 1)[-1]}",
                  {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": stub_server.base_url, "NOVITA_TIMEOUT": "3",
                   "NOVITA_MODEL": "replace-background"})


@pytest.fixture(scope="session")
def app_insecure(request) -> AppServer:
    """The app with a key and a plain-http, non-loopback Novita address, which it must refuse."""
    return _serve(request, "insecure", {"NOVITA_API_KEY": E2E_KEY, "NOVITA_BASE_URL": "http://example.invalid"})


@pytest.fixture(autouse=True)
def _app_logs_stay_clean():
    """After every test: no app wrote a traceback or the owner key to its output meanwhile."""
    offsets = {id(s): s.log_size() for s in _SERVERS}
    yield
    for server in _SERVERS:
        text = server.log(offsets.get(id(server), 0))
        assert E2E_KEY not in text, f"the API key appeared in the {server.name} app's output"
        assert "Traceback" not in text, f"the {server.name} app logged a traceback:\n{text[-4000:]}"


# ------------------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def chromium():
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost", "::1")


def _route_context(context) -> list[str]:
    """Serve juxtapose from node_modules, abort everything else that is not loopback; return the
    list the aborted URLs are recorded in."""
    blocked: list[str] = []

    def outside(route):
        blocked.append(route.request.url)
        route.abort("blockedbyclient")

    def juxtapose(route):
        # jsDelivr's npm path: /npm/juxtaposejs@<version>/build/<rel>; only the installed version is served
        path = urlsplit(route.request.url).path
        name = path.rsplit("/", 1)[-1]
        if name not in JUXTAPOSE_FILES or f"/juxtaposejs@{juxtapose_version()}/build/" not in path:
            return outside(route)
        rel, content_type = JUXTAPOSE_FILES[name]
        # As the CDN does: the slider asks for these with crossorigin, so the browser can check their hash.
        return route.fulfill(path=JUXTAPOSE / rel, content_type=content_type,
                             headers={"Access-Control-Allow-Origin": "*"})

    context.route(lambda url: not _is_loopback(url), outside)
    context.route("**/cdn.jsdelivr.net/npm/juxtaposejs@*/**", juxtapose)  # registered last: matched first
    return blocked


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def studio(chromium, request):
    """Factory: `studio(app)` opens the app in a fresh browser context and returns its page object.
    Call it twice for two people at once; every context closes after the test."""
    contexts = []

    def open_studio(server: AppServer, *, viewport: dict | None = None) -> Studio:
        context = chromium.new_context(viewport=viewport or VIEWPORT, accept_downloads=True)
        contexts.append(context)
        blocked = _route_context(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return Studio(page, server, blocked).open()

    yield open_studio
    report = getattr(request.node, "report_call", None)
    for n, context in enumerate(contexts):
        if report is not None and report.failed:
            for page in context.pages:  # what the person saw when it failed
                (ARTIFACTS / "failures").mkdir(parents=True, exist_ok=True)
                try:
                    page.screenshot(path=ARTIFACTS / "failures" / f"{request.node.name}-{n}.png")
                except playwright_sync.Error:
                    pass
        context.close()


# --------------------------------------------------------------------------------------- the page object


# The page is idle: the script is not running, the socket is connected, no element is stale.
IDLE = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.dataset.testScriptState !== 'running' && app.dataset.testConnectionState === 'CONNECTED'
    && !document.querySelector('[data-stale="true"]')
    && !document.querySelector('[data-testid="stStatusWidget"]');
}
"""


@dataclass
class Download:
    name: str
    data: bytes

    @property
    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.data))


class Studio:
    """The app as a person sees it in one browser tab. Every action waits for the app's answer and ends by
    checking that no traceback is on the page."""

    def __init__(self, page, server: AppServer, blocked: list[str]) -> None:
        self.page = page
        self.server = server
        self.blocked = blocked  # non-loopback URLs the page tried and was refused
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self._mark = 0  # runs finished before the pending Replace background press
        self.finished = 0  # script runs the app reported finished to this page (reruns not counted)
        self._ws = None  # the app's socket, once the page opened it
        self.secrets = {E2E_KEY}  # strings the app must never send to this page
        self.leaks: list[str] = []  # secrets seen in the app's messages to this page
        page.on("websocket", self._watch_runs)
        page.on("dialog", self._dialog)
        page.on("request", lambda r: self.requests.append(r.url))

    def _watch_runs(self, ws) -> None:
        """Count the app's script runs from its own messages: a `script_finished` that is not followed by a
        rerun. Waiting for "one more than before the action" cannot be fooled by a run not yet started."""
        if "/_stcore/stream" not in ws.url:
            return
        self._ws = ws  # a reconnect brings a new socket; the count goes on

        def received(payload) -> None:
            raw = payload.encode() if isinstance(payload, str) else payload
            # the tail too: text the app shows may be escaped on the wire (sk\_e2e\_…) yet shown whole
            self.leaks.extend(secret for secret in self.secrets if secret[-12:].encode() in raw)
            if isinstance(payload, str):
                return
            try:
                msg = ForwardMsg.FromString(payload)
            except Exception:  # noqa: BLE001 - not ours to judge; only script_finished matters
                return
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished != EARLY_FOR_RERUN:
                self.finished += 1

        ws.on("framereceived", received)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    # -- waiting and checking

    def check(self) -> Studio:
        """No Streamlit exception box on the page."""
        boxes = self.page.locator(EXCEPTION)
        if boxes.count():
            pytest.fail(f"the page shows a traceback:\n{boxes.first.inner_text()[:3000]}")
        return self

    def runs(self) -> int:
        return self.finished

    def settle(self, timeout: float = RUN_TIMEOUT, *, after: int = -1) -> Studio:
        """Wait until more than `after` script runs finished (any, by default) and the page is idle: not
        running, connected, nothing stale. Then check for a traceback. No polling from here: Playwright
        wakes us on the socket's next message, and the page checks its own state each frame."""
        deadline = time.monotonic() + timeout / 1000
        try:
            while self.finished <= after:
                if self._ws is None:
                    self.page.wait_for_event("websocket", timeout=self._left(deadline))
                    continue
                self._ws.wait_for_event("framereceived", predicate=lambda _: self.finished > after,
                                        timeout=self._left(deadline))
            self.page.wait_for_function(IDLE, timeout=self._left(deadline))
        except playwright_sync.TimeoutError:
            state = self.page.evaluate(
                "() => ({app: {...(document.querySelector('[data-testid=\"stApp\"]') || {}).dataset},"
                " busy: [...document.querySelectorAll('[data-testid=\"stStatusWidget\"], [data-stale=\"true\"]')]"
                ".map(e => (e.dataset.testid || '') + ': ' + e.innerText.slice(0, 80))})")
            shot = self.screenshot("settle-timeout.png")
            pytest.fail(f"the app did not finish a run in {timeout / 1000:.0f} s (runs {self.finished}, "
                        f"waiting for more than {after}): {state}; see {shot}")
        return self.check()

    @staticmethod
    def _left(deadline: float) -> float:
        """Milliseconds until `deadline`, at least 1 (0 would mean no timeout to Playwright)."""
        return max(1.0, (deadline - time.monotonic()) * 1000)

    def act(self, action: Callable[[], object], timeout: float = RUN_TIMEOUT) -> Studio:
        """Do something that makes the app rerun, and wait for that rerun to finish."""
        before = self.runs()
        action()
        return self.settle(timeout, after=before)

    def body_text(self) -> str:
        return self.page.locator("body").inner_text()

    def html_everywhere(self) -> str:
        """The HTML of the page and of every frame in it."""
        return "\n".join([self.page.content(), *(f.content() for f in self.page.frames[1:])])

    # -- the main page

    def open(self) -> Studio:
        self.page.goto(self.server.url)
        self.page.get_by_role("button", name="Replace background").wait_for(timeout=RUN_TIMEOUT)
        return self.settle(after=0)

    def upload(self, name: str, data: bytes, mime: str = "image/jpeg") -> Studio:
        tab = self.page.get_by_role("tab", name="Upload a photo")
        if tab.get_attribute("aria-selected") != "true":
            tab.click()  # switching tabs is client-side: no rerun
        self.act(lambda: self.page.set_input_files('input[type="file"]',
                                                   files=[{"name": name, "mimeType": mime, "buffer": data}]))
        return self

    def click_pill(self, text: str) -> Studio:
        """Click a chip of an st.pills group (its role depends on the selection mode, so find it by text)."""
        pill = self.page.locator('button[data-variant="pills"]').filter(has=self.page.get_by_text(text, exact=True))
        return self.act(pill.click)

    def photo_line(self) -> str:
        """'Photo in use: name' and its 'W × H px' line."""
        return self.page.locator('[data-testid="stMarkdownContainer"]', has_text="Photo in use:").inner_text()

    def type_prompt(self, text: str) -> Studio:
        box = self.page.get_by_label("Prompt", exact=True)
        if box.input_value() != text:  # an unchanged value would not rerun
            box.fill(text)
            self.act(lambda: box.press("Control+Enter"))  # Streamlit commits a text area on blur or Ctrl+Enter
        expect(box).to_have_value(text)
        return self

    def choose_format(self, label: str) -> Studio:
        group = self.page.get_by_role("radiogroup", name="Output format")
        radio = group.get_by_role("radio", name=re.compile(rf"^{label}\b"))
        if not radio.is_checked():
            self.act(group.get_by_text(label, exact=True).click)
        expect(radio).to_be_checked()
        return self

    def replace_button(self):
        return self.page.get_by_role("button", name="Replace background", exact=True)

    def press_replace(self, wait: bool = True) -> Studio:
        """Press Replace background; with wait, also wait for the outcome (result or error)."""
        return self.start_run(self.replace_button().click, wait=wait)

    def start_run(self, action: Callable[[], object], *, wait: bool = True) -> Studio:
        """Do what starts a run (press Replace background, Try again, double-click…); with wait, wait for
        its outcome, else call wait_for_outcome later."""
        self._mark = self.runs()
        action()
        return self.wait_for_outcome() if wait else self

    def wait_for_outcome(self, timeout: float = RUN_TIMEOUT) -> Studio:
        """Wait until the run started by start_run ended: the button is enabled again, and the app idle."""
        self.settle(timeout, after=self._mark)
        expect(self.replace_button()).to_be_enabled(timeout=timeout)  # disabled while the run is in flight
        return self.settle(timeout=timeout)

    def replace(self, prompt: str | None = None, fmt: str | None = None) -> Studio:
        """Type the prompt, pick the format, press Replace background and wait for the result's slider."""
        if prompt is not None:
            self.type_prompt(prompt)
        if fmt is not None:
            self.choose_format(fmt)
        self.press_replace()
        errors = self.error_box()
        if errors.count():
            pytest.fail(f"the run failed: {errors.first.inner_text()}")
        expect(self.result_download(fmt)).to_be_visible()
        if prompt is not None:
            expect(self.result_caption(prompt)).to_be_visible()
        self.wait_for_slider()
        return self.check()

    def error_box(self):
        return self.page.locator('[data-testid="stAlertContentError"]')

    def result_caption(self, prompt: str):
        """The caption under the slider: “prompt” · FORMAT · engine · seconds · size."""
        return self.page.locator('[data-testid="stCaptionContainer"]', has_text=f"“{prompt}”")

    # -- the slider

    def slider_frame(self):
        """The Playwright Frame of the (single) before/after slider on the page."""
        iframe = self.page.locator('iframe[data-testid="stIFrame"]')
        expect(iframe).to_have_count(1)
        return iframe.element_handle().content_frame()

    def wait_for_slider(self):
        """Wait until juxtapose built the slider and both of its images decoded; return the frame."""
        frame = self.slider_frame()
        frame.wait_for_function(
            "() => { const imgs = document.querySelectorAll('.jx-slider .jx-image img');"
            " return imgs.length === 2 && [...imgs].every(i => i.complete && i.naturalWidth > 0)"
            " && !!document.querySelector('.jx-handle'); }", timeout=RUN_TIMEOUT)
        return frame

    def slider_images(self) -> list[dict]:
        return self.wait_for_slider().eval_on_selector_all(
            ".jx-slider .jx-image img", "els => els.map(i => ({w: i.naturalWidth, h: i.naturalHeight, src: i.src}))")

    def handle_position(self) -> float:
        """The handle's position in percent of the slider's width."""
        left = self.wait_for_slider().eval_on_selector(".jx-handle", "e => e.style.left")
        return float(left.rstrip("%"))

    def drag_slider(self, fraction: float) -> float:
        """Press on the handle, move to `fraction` of the slider's width, release; return the new position."""
        frame = self.wait_for_slider()
        handle = frame.locator(".jx-handle")
        handle.scroll_into_view_if_needed()
        slider = frame.locator(".jx-slider").bounding_box()
        grip = handle.bounding_box()
        x0, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
        before = frame.eval_on_selector(".jx-handle", "e => e.style.left")
        mouse = self.page.mouse
        mouse.move(x0, y)
        mouse.down()
        mouse.move(slider["x"] + slider["width"] * fraction, y, steps=10)
        mouse.up()
        frame.wait_for_function("(before) => document.querySelector('.jx-handle').style.left !== before", arg=before)
        self.check()
        return self.handle_position()

    # -- download

    def result_download(self, fmt: str | None = None):
        """The result panel's button, 'Download PNG' etc.: the primary one (the gallery's are secondary)."""
        label = fmt or "(PNG|WEBP|JPEG)"
        return self.page.get_by_role("button", name=re.compile(rf"^Download {label}$")).and_(
            self.page.locator('[data-testid="stDownloadButton"] button[kind="primary"]'))

    def download(self, button=None) -> Download:
        """Click a download button (the result's by default) and return the file the browser saved."""
        button = button if button is not None else self.result_download()
        with self.page.expect_download() as info:
            button.click()
        download = info.value
        assert download.failure() is None, download.failure()
        data = Path(download.path()).read_bytes()
        self.check()
        return Download(download.suggested_filename, data)

    # -- navigation and history

    def go_to(self, title: str) -> Studio:
        link = self.page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title)
        self.act(link.click)
        expect(self.page.get_by_role("heading", name=title, level=1)).to_be_visible()
        return self

    def gallery_buttons(self, label: str):
        """The gallery cards' buttons with this label ("Open", "Delete"), newest card first."""
        return self.page.get_by_role("button", name=label, exact=True)

    def gallery_count(self) -> int:
        return self.gallery_buttons("Open").count()

    def screenshot(self, name: str, *, height: int | None = None) -> Path:
        """Save a screenshot to artifacts/; with `height`, first make the window that tall so the whole
        page (which scrolls inside Streamlit's own container) is in the picture."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if height:
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            if self.page.locator('iframe[data-testid="stIFrame"]').count():
                self.wait_for_slider()
        self.page.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
        path = ARTIFACTS / name
        self.page.screenshot(path=path, animations="disabled")
        return path


# ------------------------------------------------------------------------------------------ photos


def jpeg(size=(640, 480), colour=(200, 60, 40), background=(235, 235, 235)) -> bytes:
    """A generated photo: a coloured block on a light background."""
    image = Image.new("RGB", size, background)
    w, h = size
    image.paste(colour, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def phone_jpeg() -> bytes:
    """A 400 × 300 JPEG stored sideways with EXIF Orientation 6, as phones write them: upright it is
    300 × 400, with the red band (stored on the left edge) at the top."""
    image = Image.new("RGB", (400, 300), (230, 230, 230))
    image.paste((220, 20, 20), (0, 0, 60, 300))  # stored left edge → top after rotating 90° clockwise
    image.paste((30, 30, 200), (150, 100, 250, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def heic(size=(480, 360)) -> bytes:
    """An iPhone-style HEIC made with pillow_heif."""
    import pillow_heif

    image = Image.new("RGB", size, (240, 236, 228))
    w, h = size
    image.paste((40, 140, 90), (w // 3, h // 4, 2 * w // 3, 3 * h // 4))
    buf = io.BytesIO()
    pillow_heif.from_pillow(image).save(buf, quality=80)
    return buf.getvalue()
