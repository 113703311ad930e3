"""Memory against the smallest Streamlit Community Cloud container (690 MB): the resident memory of one real
app server (`streamlit run app.py`, no key, so every result is the offline engine's and nothing is sent)
driven over Streamlit's websocket protocol by bench/sessions.py's browser-less sessions.

Three phases, each read from /proc/<pid>/status of the server process (VmRSS; VmHWM for the peak, reset
between phases through /proc/<pid>/clear_refs, with a 20 Hz sampler of VmRSS as a fallback):

1. the subject model loaded: one throwaway session runs one small photo, its tab is closed;
2. five sessions at once, each uploading 20 photo-like 12 MP JPEGs (bench/photos.py) one after another and
   pressing Replace background for each (as the browser does, the uploader's previous file is deleted when
   the next is picked), so each holds 20 results;
3. one of the five goes to the Batch page, uploads 50 more 12 MP photos and runs them as one batch.

"Settled" is VmRSS after the server has been idle for a few seconds with every session still open; "peak" is
the most it held during the phase. The budget is on the peak: a container is stopped at its limit, not at
its average.

The third phase's peak is printed as it is and judged less the uploads Streamlit holds: Streamlit keeps every
uploaded file in its own memory until the browser removes it or the session ends, and offers no call to let
go sooner. A Batch of 50 phone photos is about 255 MB that is in memory before the app runs a line, so on the
smallest container it fits only while the app's own part stays small; the README's deploy section says how
large a batch each container holds.

`python -m bench.memory` runs it alone; `bench/__main__.py` prints its lines with the other figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import photos, sessions
from bench.harness import PROMPT, Line

BUDGET_MB = 600.0  # the smallest Community Cloud container is 690 MB; the rest is headroom
SETTLE_SECONDS = 5.0
PER_RESULT_TIMEOUT = 300.0


def status(pid: int) -> dict[str, float]:
    """The memory fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, ...), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) / 1024
    return fields


def reset_peak(pid: int) -> bool:
    """Start VmHWM again from the current RSS (Linux 4.0+: `5` written to clear_refs); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler:
    """VmRSS of `pid` every `interval` s in a thread: the peak since `restart`, when VmHWM cannot be reset."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return

    def restart(self) -> None:
        self.peak = status(self.pid)["VmRSS"]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Phase:
    name: str
    peak: float
    settled: float
    anon: float  # RssAnon when settled: the heap, the model's arrays, every session's bytes
    file: float  # RssFile when settled: the mapped libraries
    seconds: float
    note: str = ""
    breakdown: dict | None = None  # with --diagnose: who holds what (bench/memory_probe.py)


class ProbedApp(sessions.AppProcess):
    """The same app server started through bench/memory_probe.py, which writes a breakdown on SIGUSR1."""

    def __init__(self, env: dict[str, str], report: str) -> None:
        self.report = report
        real = sessions.subprocess.Popen

        def probed(cmd, **kwargs):
            at = cmd.index("streamlit")
            return real([*cmd[:at], "bench.memory_probe", *cmd[at + 1:]], **kwargs)

        sessions.subprocess.Popen = probed
        try:
            super().__init__({**env, "BENCH_MEMORY_REPORT": report})
        finally:
            sessions.subprocess.Popen = real

    def breakdown(self) -> dict:
        path = Path(self.report)
        path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 120
        while not path.exists() or not path.stat().st_size:
            if time.monotonic() > deadline:
                return {"error": "no breakdown within 120 s"}
            time.sleep(0.2)
        time.sleep(0.2)
        return json.loads(path.read_text())


class Person(sessions.Session):
    """A session that keeps every Download button's key, so each new result can be told from the last."""

    downloads: list[str]
    new_download: asyncio.Event
    upload_urls: dict[str, list[str]]

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.downloads, self.new_download, self.upload_urls = [], asyncio.Event(), {}

    def _note_element(self, element) -> None:
        super()._note_element(element)
        if element.WhichOneof("type") == "download_button":
            key = element.download_button.id.rsplit("-", 1)[-1]
            if key not in self.downloads:
                self.downloads.append(key)
                self.new_download.set()

    async def replace_upload(self, key: str, name: str, data: bytes) -> None:
        """Pick a new file in a one-file uploader: the browser deletes the file it held, then uploads."""
        for url in self.upload_urls.pop(key, []):
            await asyncio.to_thread(_delete, f"http://127.0.0.1:{self.port}{url}")
        self._state(key).file_uploader_state_value.ClearField("uploaded_file_info")
        await self.upload_many(key, [(name, data)])
        infos = self._state(key).file_uploader_state_value.uploaded_file_info
        self.upload_urls[key] = [info.file_urls.delete_url for info in infos]

    def uploads_held(self) -> int:
        """Bytes of this session's uploads the server holds now: every file its uploaders show (a file picked
        again was deleted first). Streamlit keeps each upload in memory until the browser deletes it or the
        session ends; no public call lets the app release it sooner."""
        return sum(info.size for state in self.states.values() if state.HasField("file_uploader_state_value")
                   for info in state.file_uploader_state_value.uploaded_file_info)

    async def until_download(self, prefix: str, seen: set[str], timeout: float = PER_RESULT_TIMEOUT) -> str:
        """The key of the first Download button starting with `prefix` that is not in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            fresh = [key for key in self.downloads if key.startswith(prefix) and key not in seen]
            if fresh:
                return fresh[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new {prefix!r} download within {timeout:g} s")
            self.new_download.clear()
            try:
                await asyncio.wait_for(self.new_download.wait(), 1.0)
            except TimeoutError:
                pass


def _delete(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30) as reply:
        reply.read()


def _photo(seed: int, size: tuple[int, int]) -> bytes:
    return photos.photo(size, seed=seed)


async def _one_result(person: Person, seed: int, size: tuple[int, int], prompt: str) -> None:
    data = await asyncio.to_thread(_photo, seed, size)
    await person.replace_upload("upload", f"IMG_{seed:04d}.jpg", data)
    person.set_text("prompt", prompt)
    seen = set(person.downloads)
    press = asyncio.create_task(person.rerun(trigger="replace.run"))
    await person.until_download("replace.download.", seen)
    await asyncio.gather(press, return_exceptions=True)


async def _results(person: Person, index: int, count: int, size: tuple[int, int]) -> None:
    for n in range(count):
        await _one_result(person, 10_000 + 100 * index + n, size, f"{PROMPT}, take {n + 1}")


async def _batch(person: Person, count: int, size: tuple[int, int]) -> None:
    person.page = "batch"
    await person.rerun()
    data = [await asyncio.to_thread(_photo, 20_000 + n, size) for n in range(count)]
    await person.upload_many("batch.upload", [(f"BATCH_{n:04d}.jpg", photo) for n, photo in enumerate(data)])
    del data
    person.set_text("batch.prompt", PROMPT)
    seen = set(person.downloads)
    press = asyncio.create_task(person.rerun(trigger="batch.start"))
    await person.until_download("batch.zip", seen, PER_RESULT_TIMEOUT * max(1, count // 4))
    await asyncio.gather(press, return_exceptions=True)


class Server:
    """The phases over one app server, each read with the same meter."""

    def __init__(self, pid: int, app: ProbedApp | None = None) -> None:
        self.pid, self.app = pid, app
        self.hwm = reset_peak(pid)
        self.sampler = Sampler(pid)

    def begin(self) -> float:
        if self.hwm:
            reset_peak(self.pid)
        self.sampler.restart()
        return time.monotonic()

    def end(self, name: str, started: float, note: str = "") -> Phase:
        seconds = time.monotonic() - started
        peak = max(status(self.pid)["VmHWM"] if self.hwm else 0.0, self.sampler.peak)
        time.sleep(SETTLE_SECONDS)
        now = status(self.pid)
        peak = max(peak, now["VmHWM"] if self.hwm else 0.0, self.sampler.peak)
        found = self.app.breakdown() if self.app is not None else None
        return Phase(name, peak, now["VmRSS"], now.get("RssAnon", 0.0), now.get("RssFile", 0.0), seconds, note,
                     found)


def _store_mb(folder: str) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def measure(count: int = 5, results: int = 20, batch: int = 50, size: tuple[int, int] = photos.PHONE_12MP,
            progress=None, diagnose: bool = False, server_env: dict[str, str] | None = None,
            ) -> tuple[list[Phase], dict[str, float]]:
    """The three phases over one fresh app server (no key: the offline engine; the history store on, as by
    default, in a folder of its own). Also the server's RSS once started, and what the store's folder held at
    the end: the same results the sessions hold, kept on disk."""
    say = progress or (lambda text: None)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as kept:
        env = {"HISTORY_STORE_DIR": kept, "MAX_IMAGES_PER_SESSION": "1000", "MAX_IMAGES_PER_DAY": "100000",
               **(server_env or {})}
        app = ProbedApp(env, str(Path(kept) / "breakdown.json")) if diagnose else sessions.AppProcess(env)
        try:
            server = Server(app.proc.pid, app if diagnose else None)
            facts = {"started": status(app.proc.pid)["VmRSS"], "peak_reset": float(server.hwm)}
            phases: list[Phase] = []

            async def run_all() -> None:
                started = server.begin()
                warm = Person(app.port)
                await warm.open()
                await _one_result(warm, 1, (640, 480), "warm up")
                await warm.close()
                phases.append(server.end("model_loaded", started, "one 640 × 480 photo, its tab since closed"))
                say(f"model loaded: {phases[-1]}")

                people = [Person(app.port) for _ in range(count)]
                started = server.begin()
                await asyncio.gather(*(p.open() for p in people))
                await asyncio.gather(*(_results(p, i, results, size) for i, p in enumerate(people)))
                held = sorted({len([k for k in p.downloads if k.startswith("replace.download.")]) for p in people})
                phases.append(server.end("sessions", started, f"results per session {'/'.join(map(str, held))}"))
                say(f"sessions: {phases[-1]}; store {_store_mb(kept):.0f} MB")

                facts["uploads_sessions"] = sum(p.uploads_held() for p in people) / 2**20
                started = server.begin()
                await _batch(people[0], batch, size)
                phases.append(server.end("batch", started))
                facts["uploads_batch"] = sum(p.uploads_held() for p in people) / 2**20
                say(f"batch: {phases[-1]}; uploads held {facts['uploads_batch']:.0f} MB")
                facts["store_mb"] = _store_mb(kept)
                await asyncio.gather(*(p.close() for p in people), return_exceptions=True)

            try:
                asyncio.run(run_all())
            finally:
                server.sampler.stop()
        finally:
            app.stop()
    return phases, facts


def lines(count: int = 5, results: int = 20, batch: int = 50, size: tuple[int, int] = photos.PHONE_12MP,
          progress=None, **options) -> list[Line]:
    """The three figures, each the phase's peak against the budget."""
    phases, facts = measure(count, results, batch, size, progress, **options)
    by = {p.name: p for p in phases}
    mp = f"{size[0] * size[1] / 1e6:.0f}mp" if size[0] * size[1] >= 1e6 else f"{size[0]}x{size[1]}"
    meter = "VmHWM, reset per phase" if facts["peak_reset"] else "VmRSS sampled at 20 Hz"

    def line(name: str, phase: Phase, what: str) -> Line:
        return Line(name, phase.peak, "<=", BUDGET_MB, unit="MB", digits=0,
                    detail=f"peak ({meter}); settled {phase.settled:.0f} MB after {SETTLE_SECONDS:g} s idle "
                           f"(anon {phase.anon:.0f}, files {phase.file:.0f}); {what}; {phase.seconds:.0f} s")

    return [
        line("server_rss_model_loaded", by["model_loaded"],
             f"server at start {facts['started']:.0f} MB; {by['model_loaded'].note}"),
        line(f"server_rss_{count}_sessions_x{results}_{mp}", by["sessions"],
             f"{count} open sessions, {by['sessions'].note} offline PNG results from their own "
             f"{size[0]}×{size[1]} JPEGs"),
        # Reported, not judged: it holds the person's own uploads, which Streamlit keeps whatever the app does
        # (see `Person.uploads_held`); the budget is on the line below, the app's own part of the same peak.
        dataclasses.replace(
            line(f"server_rss_after_batch_{batch}_{mp}", by["batch"],
                 f"then one of them ran a Batch of {batch} {size[0]}×{size[1]} JPEGs, every session still open; "
                 f"the history store's folder holds {facts.get('store_mb', 0):.0f} MB"), op=None, limit=None),
        Line(f"server_rss_after_batch_{batch}_{mp}_less_uploads", by["batch"].peak - facts["uploads_batch"], "<=",
             BUDGET_MB, unit="MB", digits=0,
             detail=f"the line above less the {facts['uploads_batch']:.0f} MB of uploads Streamlit holds in "
                    f"memory while the pages show them (the Batch's {batch} photos and each session's photo): "
                    f"the app's own memory at the batch's peak"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--results", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", default="4032x3024", help="the photos' WIDTHxHEIGHT")
    parser.add_argument("--diagnose", action="store_true",
                        help="after each phase, print who holds the memory (bench/memory_probe.py)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server only, e.g. MALLOC_ARENA_MAX=2")
    args = parser.parse_args(argv)
    size = tuple(int(n) for n in args.size.split("x"))
    made = lines(args.sessions, args.results, args.batch, size,
                 progress=lambda text: print(f"# {text}", file=sys.stderr, flush=True), diagnose=args.diagnose,
                 server_env=dict(item.split("=", 1) for item in args.server_env))
    for line in made:
        print(line, flush=True)
    return 1 if any(line.verdict == "MISS" for line in made) else 0


if __name__ == "__main__":
    sys.exit(main())
