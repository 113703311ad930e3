"""The figures: each returns its Line(s), measured in this run against the loopback stand-in."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image

from bench.harness import BENCH_KEY, PROMPT, Line, alternating_medians, app_environment, paired_medians
from bench.photos import PHONE_12MP, photo
from services import engines, images, jobs, novita
from services.history import History, HistoryItem

ROOT = Path(__file__).resolve().parent.parent
IMAGE_TYPE = "png"  # the app's default output format, and the heaviest to carry back
SDK_REQUIREMENT = "novita-client==0.7.1"


def _mb(nbytes: int) -> float:
    return nbytes / 2**20


# 1. Client overhead -------------------------------------------------------------------------------------

def app_path(raw: bytes, name: str = "IMG_0001.jpg") -> HistoryItem:
    """What the app does for one photo: prepare (with the slider preview), then jobs.make_item (encode,
    POST via services.novita, decode and check the reply, result preview and thumbnail), then the slider's
    markup (written once a result; reruns reuse it)."""
    from components import compare

    prepared = images.prepare(raw, name)  # with the slider's preview, from the same decode
    item = jobs.make_item(prepared, prepared.preview, PROMPT, IMAGE_TYPE, engine=engines.NOVITA, source_name=name,
                          api_key=BENCH_KEY)
    compare._markup(item.before_preview, item.after_preview, compare.WIDTH)
    return item


def _raw_post(base_url: str, prepared: images.PreparedImage):
    """A bare requests.post of the already-built JSON body: the floor any client pays. Returns the body."""
    body = json.dumps({
        "image_file": base64.b64encode(prepared.data).decode("ascii"),
        "prompt": PROMPT,
        "extra": {"response_image_type": IMAGE_TYPE, "enterprise_plan": {"enabled": False}},
    }).encode()
    headers = {"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"}
    url = base_url + novita.PATH

    def post() -> bytes:
        response = requests.post(url, data=body, headers=headers, timeout=(5, 120))
        if response.status_code != 200:
            raise RuntimeError(f"stand-in answered {response.status_code}")
        return response.content  # read it all, as the client does

    return post


def client_overhead(base_url: str, size: tuple[int, int], repeats: int, budget: float | None,
                    warmup: int = 1) -> Line:
    raw = photo(size, seed=1)
    prepared = images.prepare(raw, "IMG_0001.jpg")
    ours, bare, ours_cpu, bare_cpu = paired_medians(lambda: app_path(raw), _raw_post(base_url, prepared), repeats,
                                                    warmup)
    sent = "sent untouched" if prepared.reused_original else f"prepared to {prepared.size[0]}×{prepared.size[1]}"
    detail = (f"CPU {ours_cpu * 1000:.0f} ms vs {bare_cpu * 1000:.0f} ms (+{(ours_cpu - bare_cpu) * 1000:.0f} ms a photo); "
              f"wall {ours * 1000:.0f} vs {bare * 1000:.0f} ms, ratio {ours / bare:.2f}; "
              f"{len(raw) / 1e6:.1f} MB JPEG {sent}; {IMAGE_TYPE.upper()} reply")
    return Line(f"client_overhead_{size[0]}x{size[1]}", ours_cpu / bare_cpu, "<=" if budget else None, budget,
                detail=detail)


def _least_client(base_url: str, raw: bytes, size: tuple[int, int]):
    """A client that sends the body ours sends and does nothing else: the photo decoded at the DCT scale
    that gives `size`, encoded as ours encodes it, the body joined as bytes, one POST on a kept connection,
    and the reply's pixels decoded. No previews, no checks: the ceiling of the SDK comparison."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"}
    rest = json.dumps({"prompt": PROMPT, "extra": {"response_image_type": IMAGE_TYPE}})[1:].encode()

    def least() -> None:
        with Image.open(io.BytesIO(raw)) as image:
            image.draft("RGB", size)
            image.load()
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=images.JPEG_QUALITY)
        body = b"".join((b'{"image_file": "', base64.b64encode(buffer.getvalue()), b'", ', rest))
        reply = session.post(base_url + novita.PATH, data=body, headers=headers, timeout=(5, 120)).content
        with Image.open(io.BytesIO(base64.b64decode(json.loads(reply)["image_file"]))) as image:
            image.load()

    return least


def _floor(bare):
    """The least any client can add to the bare POST and still have a result to show: read the JSON,
    base64-decode the image and decode its pixels (a preview needs them all; PNG has no reduced decode).
    Nothing else: no preparation, no previews, no checks."""

    def floor() -> None:
        data = base64.b64decode(json.loads(bare())["image_file"])
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    return floor


def overhead_and_floor(base_url: str, size: tuple[int, int], repeats: int) -> list[Line]:
    """The app's path, the reply-decode floor and the bare POST, run in turn: each ÷ the bare POST (reports),
    and the app's path ÷ the floor, with its budget: what the app does beyond reading the reply."""
    raw = photo(size, seed=1)
    prepared = images.prepare(raw, "IMG_0001.jpg")
    bare = _raw_post(base_url, prepared)
    (ours, floor, plain), (ours_cpu, floor_cpu, plain_cpu) = alternating_medians(
        (lambda: app_path(raw), _floor(bare), bare), repeats)
    sent = "sent untouched" if prepared.reused_original else f"prepared to {prepared.size[0]}×{prepared.size[1]}"
    tag = f"{size[0]}x{size[1]}"
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    return [
        Line(f"client_overhead_{tag}", ours_cpu / plain_cpu,
             detail=f"CPU {ms(ours_cpu)} vs {ms(plain_cpu)} (+{ms(ours_cpu - plain_cpu)} a photo); wall {ms(ours)} vs "
                    f"{ms(plain)}, ratio {ours / plain:.2f}; {len(raw) / 1e6:.1f} MB JPEG {sent}; "
                    f"{IMAGE_TYPE.upper()} reply"),
        Line(f"reply_decode_floor_{tag}", floor_cpu / plain_cpu,
             detail=f"CPU {ms(floor_cpu)} vs {ms(plain_cpu)} (+{ms(floor_cpu - plain_cpu)}): the bare POST plus only "
                    f"decoding its {IMAGE_TYPE.upper()} reply, the lower bound of client_overhead_{tag}"),
        Line(f"overhead_vs_floor_{tag}", ours_cpu / floor_cpu, "<=", 1.10,
             detail=f"CPU {ms(ours_cpu)} ÷ {ms(floor_cpu)}: the app's own work beyond reading the reply, "
                    f"+{ms(ours_cpu - floor_cpu)} a photo; {repeats} runs of each, in turn"),
    ]


# 2. Against the official SDK ----------------------------------------------------------------------------

def sdk_vs_ours(base_url: str, repeats: int, link_mbit: float | None = None) -> Line | list[Line]:
    """The official SDK ÷ ours, the same 12 MP phone JPEG end to end. On loopback (`link_mbit` None) the
    CPU ratio, a report; behind a stand-in that reads request bodies at `link_mbit` Mbit/s (a server's link
    to a public API) CPU plus each body's time on that link, with its budget (the wall ratio in the detail):
    there the SDK's bigger body costs time, not CPU."""
    name = f"sdk_vs_ours_{PHONE_12MP[0]}x{PHONE_12MP[1]}" + (f"_{link_mbit:g}mbit" if link_mbit else "_loopback")
    names = [name] + ([name.replace("sdk_vs_ours", "sdk_vs_least_client")] if link_mbit else [])
    try:
        from novita_client import NovitaClient
    except ImportError:
        return [Line(each, status="skipped", detail=f"pip install {SDK_REQUIREMENT}") for each in names]
    raw = photo(PHONE_12MP, seed=2)
    client = NovitaClient(BENCH_KEY, base_url=base_url)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "IMG_0002.jpg"  # the SDK reads a path (or re-saves a PIL image) itself
        path.write_bytes(raw)

        def sdk() -> bytes:
            reply = client.replace_background(str(path), PROMPT, response_image_type=IMAGE_TYPE)
            return base64.b64decode(reply.image_file)  # bytes in hand, as ours gives

        try:
            prepared = images.prepare(raw)
            contenders = (sdk, lambda: app_path(raw)) + ((_least_client(base_url, raw, prepared.size),)
                                                         if link_mbit else ())
            with app_environment(base_url):  # ours to the same stand-in as the SDK
                walls, cpus = alternating_medians(contenders, repeats)
        except Exception as exc:  # noqa: BLE001 - e.g. the SDK cannot send this photo: say what happened
            return [Line(each, status="failed", detail=f"a side of the comparison failed: {type(exc).__name__}: "
                                                        f"{str(exc)[:200]}") for each in names]
    (sdk_s, ours_s, *_), (sdk_cpu, ours_cpu, *least_cpu) = walls, cpus
    ours_body = 4 * ((len(prepared.data) + 2) // 3)
    prepared_size = f"{prepared.size[0]}×{prepared.size[1]}"
    sdk_body = 4 * ((len(raw) + 2) // 3)
    bodies = (f"request body {sdk_body / 1e6:.1f} MB (the original, base64) vs {ours_body / 1e6:.1f} MB (prepared "
              f"to {prepared_size}); ours also makes the previews")
    if link_mbit:
        # CPU plus the time the link takes for the body: the wall time on an idle machine, steady on a busy one
        upload = lambda nbytes: nbytes * 8 / (link_mbit * 1e6)  # noqa: E731
        sdk_t, ours_t = sdk_cpu + upload(sdk_body), ours_cpu + upload(ours_body)
        least_t = least_cpu[0] + upload(ours_body)
        return [
            Line(name, sdk_t / ours_t, ">=", 3.0,
                 detail=f"CPU + upload {sdk_t:.2f} s vs ours {ours_t:.2f} s (uploads {upload(sdk_body):.2f} s vs "
                        f"{upload(ours_body):.2f} s at {link_mbit:g} Mbit/s); measured wall {sdk_s:.2f} vs "
                        f"{ours_s:.2f} s, ratio {sdk_s / ours_s:.2f}; {bodies}"),
            Line(name.replace("sdk_vs_ours", "sdk_vs_least_client"), sdk_t / least_t,
                 detail=f"the ceiling of the line above: a client that sends the same body and does nothing else "
                        f"(decode at half scale, encode, POST, decode the reply; no previews, no checks) takes "
                        f"{least_t:.2f} s; ours takes {ours_t / least_t:.2f}× its time"),
        ]
    return Line(name, sdk_cpu / ours_cpu,
                detail=f"CPU {sdk_cpu:.2f} s vs ours {ours_cpu:.2f} s; wall {sdk_s:.2f} vs {ours_s:.2f} s, ratio "
                       f"{sdk_s / ours_s:.2f}; {bodies}")


# 3-5. A session with 20 results ----------------------------------------------------------------------------

@dataclass
class Session:
    """What one person's session holds after 20 runs: the history and the photo in use."""

    history: History
    photo: object  # components.session.Photo
    current: HistoryItem
    photo_sizes: str


def build_session(count: int, size: tuple[int, int], current_size: tuple[int, int]) -> Session:
    """`count` results through the app's own path (prepare → stand-in → previews); the newest, shown in
    the slider, from a `current_size` photo."""
    from components.session import make_photo

    history = History()
    for index in range(count):
        newest = index == count - 1
        raw = photo(current_size if newest else size, seed=100 + index)
        name = f"IMG_{index:04d}.jpg"
        prepared = images.prepare(raw, name)
        item = jobs.make_item(prepared, prepared.preview, PROMPT, IMAGE_TYPE, engine=engines.NOVITA, source_name=name,
                              api_key=BENCH_KEY)
        history.add(item)
    chosen = make_photo(name, raw, "upload")
    sizes = f"{size[0]}×{size[1]}" if size == current_size else f"{size[0]}×{size[1]}, newest {current_size[0]}×{current_size[1]}"
    return Session(history, chosen, item, sizes)


class ScriptClock:
    """Times each AppTest script run from SCRIPT_STARTED to its stop event, in CPU seconds of the script
    thread (the events are sent from it) and in wall seconds; AppTest's own work around the run is left out."""

    def __init__(self) -> None:
        self.durations: list[float] = []  # CPU seconds of the script thread
        self.walls: list[float] = []
        self._started: tuple[float, float] | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[ScriptClock]:
        from streamlit.runtime.scriptrunner.script_runner import ScriptRunnerEvent
        from streamlit.testing.v1 import local_script_runner

        runner_class = local_script_runner.LocalScriptRunner
        original = runner_class.__init__
        clock = self
        # AppTest forgets between runs that app.py's router has run, so each run starts on the page file, and
        # the page hands over to the router (components.sidebar.page_setup) at once: only the full run counts,
        # as on a server, where that happens once in its life.
        finished = (ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_COMPILE_ERROR)

        def record(sender, event, **kwargs):
            if event == ScriptRunnerEvent.SCRIPT_STARTED:
                clock._started = (time.thread_time(), time.perf_counter())
            elif event in finished and clock._started is not None:
                cpu, wall = clock._started
                clock.durations.append(time.thread_time() - cpu)
                clock.walls.append(time.perf_counter() - wall)
                clock._started = None

        def init(runner, *args, **kwargs):
            original(runner, *args, **kwargs)
            runner.on_event.connect(record, weak=False)

        runner_class.__init__ = init
        try:
            yield self
        finally:
            runner_class.__init__ = original

    def run(self, at) -> float:
        before = len(self.durations)
        at.run()
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].value}")
        if len(self.durations) != before + 1:
            raise RuntimeError("could not time the script run")
        return self.durations[-1]


class ImageWork:
    """Counts Pillow decodes, resizes and encodes while installed (to see what a rerun redoes)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[ImageWork]:
        from PIL import Image, ImageFile

        targets = [(ImageFile.ImageFile, "load", "decode"), (Image.Image, "resize", "resize"),
                   (Image.Image, "save", "encode")]
        originals = []
        for owner, attr, label in targets:
            original = getattr(owner, attr)
            originals.append((owner, attr, original))
            setattr(owner, attr, self._counting(original, label))
        try:
            yield self
        finally:
            for owner, attr, original in originals:
                setattr(owner, attr, original)

    def _counting(self, original, label):
        work = self

        def wrapper(image, *args, **kwargs):
            # ImageFile.load runs for every access of a lazily opened file; count only a real decode
            if label != "decode" or getattr(image, "tile", None):
                with work._lock:
                    work.counts[label] += 1
            return original(image, *args, **kwargs)

        return wrapper


def _app_test(state: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def reruns_and_payload(session: Session, runs: int, warmup: int = 2) -> list[Line]:
    """Figures 3 and 4: rerun time of the main page with 20 results vs none, what a rerun redoes, and the
    bytes of the slider's HTML."""
    import streamlit as st

    from components.session import PageState

    st.cache_resource.clear()
    empty = _app_test({})
    full = _app_test({"history": session.history, "photo": session.photo,
                      "replace.page": PageState(opened=session.current.id)})
    clock = ScriptClock()
    with clock.installed():
        for _ in range(warmup):  # first runs import modules and fill caches
            clock.run(empty)
            clock.run(full)
        frames = full.get("iframe")
        if len(frames) != 1 or len(full.session_state["history"]) != len(session.history):
            raise RuntimeError("the page did not show the slider and the gallery")
        empty_times, full_times, full_walls = [], [], []
        for _ in range(runs):
            empty_times.append(clock.run(empty))
            full_times.append(clock.run(full))
            full_walls.append(clock.walls[-1])
        work = ImageWork()
        with work.installed():
            for _ in range(3):
                clock.run(full)
    html = frames[0].proto.srcdoc
    empty_ms, full_ms = statistics.median(empty_times) * 1000, statistics.median(full_times) * 1000
    items = len(session.history)
    per_run = {label: work.counts[label] / 3 for label in ("decode", "resize", "encode")}
    redone = sum(per_run.values())
    work_detail = ", ".join(f"{count:g} {label}s" for label, count in per_run.items())
    payload = len(html.encode("utf-8"))
    images_in = html.count("data:image/")
    return [
        Line(f"rerun_{items}_items_vs_empty", full_ms / empty_ms, "<=", 3.0,
             detail=f"median script-thread CPU {full_ms:.1f} ms vs {empty_ms:.1f} ms empty, {runs} reruns each; "
                    f"photos {session.photo_sizes}"),
        Line(f"rerun_{items}_items_ms", full_ms, "<=", 30.0, unit="ms", digits=1,
             detail=f"median script-thread CPU of {runs} AppTest reruns; wall median "
                    f"{statistics.median(full_walls) * 1000:.1f} ms"),
        Line(f"rerun_image_work_{items}_items", redone, "<=", 0.0, digits=1, unit="ops",
             detail=f"Pillow work per rerun that needs none: {work_detail}"),
        Line("slider_payload_12mp", payload / 1000, "<=", 600.0, unit="KB", digits=0,
             detail=f"srcdoc of the slider's iframe, {images_in} images inline; photo {session.photo_sizes.split()[-1]}"
                    f", result {session.current.size[0]}×{session.current.size[1]}"),
    ]


def session_memory(session: Session) -> Line:
    """Figure 5: bytes one session holds after 20 results (history plus the photo in use)."""
    history = session.history
    photo_bytes = len(session.photo.prepared.data) + len(session.photo.before_preview)
    total = history.nbytes + photo_bytes
    within = len(history) <= history.max_items and history.nbytes <= history.max_bytes
    detail = (f"history {len(history)} items, {_mb(history.nbytes):.1f} MB "
              f"({'within' if within else 'OVER'} its {history.max_items} items / {_mb(history.max_bytes):.0f} MB cap), "
              f"photo in use {_mb(photo_bytes):.1f} MB; photos {session.photo_sizes}, {IMAGE_TYPE.upper()} results")
    return Line(f"session_memory_{len(history)}_results", _mb(total), "<=", 150.0, unit="MB", digits=1,
                detail=detail)


# 6. Batch and the offline engine -----------------------------------------------------------------------

def batch(stub, size: tuple[int, int], repeats: int) -> Line:
    from services.budget import Ledger
    from services.quota import MemoryLimiter
    from services.runs import DONE, Run, Spending, Task

    count, concurrency, latency = 12, 4, 0.5
    ideal = count / concurrency * latency
    photos = [photo(size, seed=200 + index) for index in range(count)]
    walls, cpus = [], []
    stub.latency = latency
    try:
        for _ in range(repeats):
            tasks = [Task(f"IMG_{index:04d}.jpg", PROMPT, data=data) for index, data in enumerate(photos)]
            run = Run(tasks, IMAGE_TYPE, engines.NOVITA)
            started, cpu = time.perf_counter(), time.process_time()
            run.start(Spending(BENCH_KEY, Ledger(MemoryLimiter(1000), daily_limit=10_000), None, 0.0, concurrency))
            while not run.finished:
                time.sleep(0.005)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
            failed = [task.error for task in tasks if task.status != DONE]
            if failed:
                raise RuntimeError(f"{len(failed)} batch tasks failed: {failed[0]}")
    finally:
        stub.latency = 0.0
    wall = statistics.median(walls)
    return Line(f"batch_{count}x{size[0]}x{size[1]}_c{concurrency}", wall / ideal, "<=", 1.15,
                detail=f"median wall {wall:.2f} s vs ideal {ideal:.2f} s ({count} photos, {concurrency} at a time, "
                       f"the stand-in answering each {latency} s after it arrives, its rendering included; "
                       f"{repeats} runs); process CPU {statistics.median(cpus):.2f} s a "
                       f"run on {os.cpu_count()} CPUs, the in-process stand-in's included")


def offline_seconds(size: tuple[int, int], repeats: int) -> Line:
    name = f"offline_seconds_{size[0]}x{size[1]}"
    raw = photo(size, seed=300)
    try:
        from services import offline

        def run() -> None:
            offline.replace_background(raw, PROMPT, IMAGE_TYPE)

        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
    except Exception as exc:  # noqa: BLE001 - another helper may be mid-change: report, don't fail
        return Line(name, status="broken", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    wall = statistics.median(walls)
    return Line(name, wall, "<=", 1.5, unit="s",
                detail=f"median of {repeats}; process CPU {statistics.median(cpus):.2f} s; {IMAGE_TYPE.upper()} out")



def offline_peak_rss() -> Line:
    """Peak RSS of an app process with the subject model and one 2 MP photo, over the GrabCut engine's."""
    from bench.offline_eval import RSS_AIM_MB, peak_rss

    name = "offline_peak_rss_2mp_over_grabcut"
    try:
        rss = peak_rss()
    except Exception as exc:  # noqa: BLE001 - a missing model is a finding, not a benchmark failure
        return Line(name, status="broken", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    return Line(name, rss["model"] - rss["grabcut"], "<=", RSS_AIM_MB, unit="MB", digits=0,
                detail=f"model {rss['model']:.0f} MB, GrabCut {rss['grabcut']:.0f} MB, separate processes")


# 7. Fairness between sessions --------------------------------------------------------------------------

def fairness(size: tuple[int, int], batch_size: int, repeats: int) -> Line:
    """A single offline photo's wall time in one session while another session's offline batch runs, ÷ its
    time alone: the process-wide pools serve sessions in turn, so it is not queued behind the batch."""
    from services.budget import Ledger
    from services.quota import MemoryLimiter
    from services.runs import DONE, Run, Spending, Task

    spending = Spending(None, Ledger(MemoryLimiter(1000), daily_limit=0), None, 0.0, 4)
    single = photo(size, seed=400)
    batch_photos = [photo(size, seed=401 + index) for index in range(batch_size)]

    def one(owner: str) -> float:
        run = Run([Task("single.jpg", PROMPT, data=single)], IMAGE_TYPE, engines.OFFLINE, owner=owner)
        started = time.perf_counter()
        run.start(spending)
        while not run.finished:
            time.sleep(0.005)
        if run.tasks[0].status != DONE:
            raise RuntimeError(f"the single photo failed: {run.tasks[0].error!r}")
        return time.perf_counter() - started

    alone, beside, done_meanwhile = [], [], []
    for index in range(repeats):
        alone.append(one(f"alone-{index}"))
        tasks = [Task(f"IMG_{i:04d}.jpg", PROMPT, data=data) for i, data in enumerate(batch_photos)]
        batch_run = Run(tasks, IMAGE_TYPE, engines.OFFLINE, owner=f"batch-{index}")
        batch_run.start(spending)
        time.sleep(alone[-1])  # the batch is under way
        beside.append(one(f"single-{index}"))
        done_meanwhile.append(batch_run.counts()[DONE])
        while not batch_run.finished:
            time.sleep(0.01)
    ratio = statistics.median(beside) / statistics.median(alone)
    return Line(f"fairness_single_beside_{batch_size}_batch", ratio, "<=", 2.0,
                detail=f"median {statistics.median(beside):.2f} s beside another session's {batch_size}-photo "
                       f"offline batch vs {statistics.median(alone):.2f} s alone ({repeats} runs, "
                       f"{size[0]}×{size[1]}); the batch had finished {statistics.median(done_meanwhile):g} of "
                       f"{batch_size} when the single photo was done (behind it: all {batch_size})")
