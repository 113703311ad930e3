"""Many people at once: N sessions drive one real app server over Streamlit's own websocket protocol, each
uploading its own photo and pressing Replace background at the same moment, without a browser apiece (a
browser per session would measure the browsers). Prints time-to-result and the server's CPU per result.

`python -m bench.sessions` runs it alone; `bench/__main__.py` prints its lines with the other figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench import photos
from bench.harness import BENCH_KEY, PROMPT

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESULT_TIMEOUT = 300.0
IDLE_SAMPLE = 1.5  # seconds of the idle server measured before each round


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


class AppProcess:
    """`streamlit run app.py` on a free loopback port, with the bench's settings."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        settings = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "STREAMLIT_", "HISTORY_"))}
        settings.update(STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **env)
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--server.fileWatcherType", "none", "--server.enableXsrfProtection", "false"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=settings, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the app server did not start") from None
                time.sleep(0.2)

    def cpu(self) -> float:
        return server_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Session:
    """One person's tab, as the browser speaks to the server: reruns with widget states, an upload."""

    port: int
    page: str = ""  # the page's url path ("batch"); "" for the main page
    ws: object = None
    session_id: str = ""
    widgets: dict[str, str] = field(default_factory=dict)  # widget key → its id on the page
    states: dict[str, object] = field(default_factory=dict)  # widget id → WidgetState kept between reruns
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    result_at: float | None = None
    pending: dict[str, asyncio.Future] = field(default_factory=dict)
    reader: asyncio.Task | None = None
    pages: dict[str, str] = field(default_factory=dict)  # url path → page_script_hash, from the navigation

    async def open(self) -> None:
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                                           max_size=None)
        self.reader = asyncio.create_task(self._read())
        page, self.page = self.page, ""
        await self.rerun()
        self.page = page
        if page:  # as a browser does after following a link: the page's hash, from the navigation
            await self.rerun()

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id
                self._note_pages(msg.new_session.app_pages)
            elif kind == "navigation":
                self._note_pages(msg.navigation.app_pages)
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._note_element(msg.delta.new_element)
            elif kind == "script_finished":
                self.finished.set()
            elif kind == "file_urls_response":
                future = self.pending.pop(msg.file_urls_response.response_id, None)
                if future is not None and not future.done():
                    future.set_result(msg.file_urls_response)

    def _note_pages(self, pages) -> None:
        for page in pages:
            self.pages[page.url_pathname] = page.page_script_hash

    def _note_element(self, element) -> None:
        which = element.WhichOneof("type")
        proto = getattr(element, which, None)
        widget_id = getattr(proto, "id", "")
        if widget_id and "-" in widget_id:
            self.widgets[widget_id.rsplit("-", 1)[-1]] = widget_id
        if which == "download_button" and proto.label.startswith("Download") and self.result_at is None:
            self.result_at = time.monotonic()

    async def rerun(self, trigger: str | None = None) -> None:
        """Send the widget states (and a button press) and wait until the script run ends."""
        self.finished.clear()
        msg = BackMsg()
        msg.rerun_script.widget_states.SetInParent()  # a rerun with no widget state is still a rerun
        if self.page:
            if self.page not in self.pages:
                raise RuntimeError(f"the app has no page {self.page!r}: {sorted(self.pages)}")
            msg.rerun_script.page_script_hash = self.pages[self.page]
        states = msg.rerun_script.widget_states.widgets
        for state in self.states.values():
            states.add().CopyFrom(state)
        if trigger is not None:
            pressed = states.add()
            pressed.id, pressed.trigger_value = self.widgets[trigger], True
        await self.ws.send(msg.SerializeToString())
        await asyncio.wait_for(self.finished.wait(), RESULT_TIMEOUT)

    def set_text(self, key: str, value: str) -> None:
        state = self._state(key)
        state.string_value = value

    def set_int(self, key: str, value: int) -> None:
        state = self._state(key)
        state.int_value = value

    def _state(self, key: str):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        widget_id = self.widgets[key]
        state = self.states.setdefault(widget_id, WidgetState())
        state.id = widget_id
        return state

    async def upload(self, key: str, name: str, data: bytes) -> None:
        """Upload a file the way the browser's uploader does, then rerun with it as the widget's value."""
        await self.upload_many(key, [(name, data)])

    async def upload_many(self, key: str, files: list[tuple[str, bytes]]) -> None:
        """Upload several files into one uploader (as a multiple-file picker does), then rerun once."""
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.session_id = self.session_id
        msg.file_urls_request.file_names.extend(name for name, _ in files)
        await self.ws.send(msg.SerializeToString())
        answer = await asyncio.wait_for(future, 30)
        state = self._state(key)
        for (name, data), urls in zip(files, answer.file_urls):
            await asyncio.to_thread(_put_file, f"http://127.0.0.1:{self.port}{urls.upload_url}", name, data)
            info = state.file_uploader_state_value.uploaded_file_info.add()
            info.file_id, info.name, info.size = urls.file_id, name, len(data)
            info.file_urls.upload_url, info.file_urls.delete_url = urls.upload_url, urls.delete_url
        await self.rerun()

    async def wait_for_result(self) -> float:
        """Rerun (as the page's own polling does) until a Download button appears; monotonic time of it."""
        deadline = time.monotonic() + RESULT_TIMEOUT
        while self.result_at is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no result within the time limit")
            await asyncio.sleep(0.05)
        return self.result_at

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


def _put_file(url: str, name: str, data: bytes) -> None:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="PUT",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def photo(n: int, size=(1024, 768)) -> bytes:
    """Each person's own photo-like JPEG (bench/photos.py: texture, a subject, grain), no two the same."""
    return photos.photo(size, seed=1000 + n)


@dataclass
class Round:
    sessions: int
    seconds: list[float]  # time to result of each session, from the common press
    cpu: float  # server CPU seconds during the round, beyond what it burns idle in as long (idle_rate)
    idle_rate: float = 0.0  # the server's CPU seconds a second with nobody doing anything, just before

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def slowest(self) -> float:
        return max(self.seconds)

    @property
    def cpu_per_result(self) -> float:
        return self.cpu / self.sessions


async def _round(port: int, n: int, pid: int, prompt: str) -> Round:
    sessions = [Session(port) for _ in range(n)]
    await asyncio.gather(*(s.open() for s in sessions))
    await asyncio.gather(*(s.upload("upload", f"photo-{i}.jpg", photo(i)) for i, s in enumerate(sessions)))
    for s in sessions:
        s.set_text("prompt", prompt)
    # Streamlit's server burns a little CPU with nobody doing anything (it polls its config files 5 times a
    # second, uvicorn ticks 10): measured here and taken out, so c is the work a result costs, not the round's
    # length times that baseline, which would inflate c at N = 1 and flatter every ratio against it
    idle_started, idle_cpu = time.monotonic(), server_cpu_seconds(pid)
    await asyncio.sleep(IDLE_SAMPLE)
    idle_rate = (server_cpu_seconds(pid) - idle_cpu) / (time.monotonic() - idle_started)
    cpu = server_cpu_seconds(pid)
    pressed = time.monotonic()
    # each press is its own rerun; the page then polls until the result is in
    presses = [asyncio.create_task(s.rerun(trigger="replace.run")) for s in sessions]
    results = await asyncio.gather(*(s.wait_for_result() for s in sessions))
    await asyncio.gather(*presses, return_exceptions=True)
    cpu = server_cpu_seconds(pid) - cpu - idle_rate * (time.monotonic() - pressed)
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return Round(n, [r - pressed for r in results], max(cpu, 0.0), idle_rate)


def stand_in_app(latency: float, *, offline: bool = False):
    """A stand-in answering in `latency` s and one app server pointed at it (no key: the offline engine);
    a context manager giving the app."""
    import contextlib

    from tests.novita_stub import NovitaStub

    @contextlib.contextmanager
    def both():
        # the history store on, as by default, in a folder of this server's own
        with NovitaStub(latency=latency, seed_retired=False) as stub, \
                tempfile.TemporaryDirectory(prefix="bench-history-") as kept:
            # the seed's synchronous call, as in bench/__main__.py: the app's own machinery is what is measured
            env = {"NOVITA_BASE_URL": stub.base_url, "NOVITA_MODEL": "replace-background",
                   "NOVITA_RATE_LIMIT_PER_MINUTE": "100000",
                   "MAX_IMAGES_PER_SESSION": "1000", "MAX_IMAGES_PER_DAY": "100000", "HISTORY_STORE_DIR": kept}
            if not offline:
                env["NOVITA_API_KEY"] = BENCH_KEY
            app = AppProcess(env)
            try:
                yield app
            finally:
                app.stop()

    return both()


def measure(counts: tuple[int, ...], *, latency: float, offline: bool = False) -> list[Round]:
    """One app server (with its own stand-in answering in `latency` s), one round per N in `counts`."""
    with stand_in_app(latency, offline=offline) as app:
        asyncio.run(_round(app.port, 1, app.proc.pid, "warm up"))  # imports, caches, first-run costs
        return [asyncio.run(_round(app.port, n, app.proc.pid, PROMPT)) for n in counts]


async def _single(port: int, prompt: str, size: tuple[int, int], seed: int) -> float:
    """One session on the main page: upload, press, wait; seconds from the press to its result."""
    session = Session(port)
    await session.open()
    await session.upload("upload", f"single-{seed}.jpg", photo(seed, size))
    session.set_text("prompt", prompt)
    pressed = time.monotonic()
    press = asyncio.create_task(session.rerun(trigger="replace.run"))
    done = await session.wait_for_result()
    await asyncio.gather(press, return_exceptions=True)
    await session.close()
    return done - pressed


async def _beside_batch(port: int, size: tuple[int, int], count: int, lead: float, seed: int) -> tuple[float, float, float]:
    """Another session starts a `count`-photo batch on the Batch page; `lead` s later a single photo is
    pressed on the main page. Returns (the single photo's seconds, when it was done and when the batch was,
    in seconds from the batch's press)."""
    batch = Session(port, page="batch")
    await batch.open()
    await batch.upload_many("batch.upload", [(f"batch-{i}.jpg", photo(seed + 1 + i, size)) for i in range(count)])
    batch.set_text("batch.prompt", PROMPT)
    started = time.monotonic()
    press = asyncio.create_task(batch.rerun(trigger="batch.start"))
    await asyncio.sleep(lead)
    single = await _single(port, PROMPT, size, seed)
    single_done = time.monotonic() - started
    batch_done = await batch.wait_for_result() - started
    await asyncio.gather(press, return_exceptions=True)
    await batch.close()
    return single, single_done, batch_done


def offline_fairness(size: tuple[int, int], count: int, repeats: int) -> dict[str, float]:
    """The offline engine over one app server: a single photo's time alone and beside another session's
    `count`-photo batch (medians of `repeats`), and how far into the batch it was done."""
    with stand_in_app(0.0, offline=True) as app:
        asyncio.run(_single(app.port, "warm up", size, 0))  # loads the subject model
        alone, beside, done_at, batch_ends = [], [], [], []
        for index in range(repeats):
            alone.append(asyncio.run(_single(app.port, PROMPT, size, 10 * index + 1)))
            single, single_done, batch_done = asyncio.run(
                _beside_batch(app.port, size, count, alone[-1], 10 * index + 2))
            beside.append(single)
            done_at.append(single_done)
            batch_ends.append(batch_done)
    med = statistics.median
    return {"alone": med(alone), "beside": med(beside), "done_at": med(done_at), "batch": med(batch_ends)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sessions", description=__doc__)
    parser.add_argument("--sessions", default="1,5,10,20")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--offline", action="store_true")
    args = parser.parse_args(argv)
    counts = tuple(int(n) for n in args.sessions.split(","))
    for r in measure(counts, latency=args.latency, offline=args.offline):
        print(f"N={r.sessions}: median {r.median:.2f} s, slowest {r.slowest:.2f} s, "
              f"server CPU {r.cpu_per_result:.3f} s per result")
    return 0


if __name__ == "__main__":
    sys.exit(main())
