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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image

from bench.harness import BENCH_KEY, PROMPT, Line, alternating_medians, app_environment, paired_medians
from bench.photos import PHONE_12MP, photo
from services import engines, images, jobs, novita
from services.history import History
from services.items import HistoryItem

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


# 2b. Qwen-Image Edit's async task path ----------------------------------------------------------------

EDIT_LATENCY = 0.5  # each task's length on the stand-in for the CPU comparison: collected at the first poll


@dataclass
class _EditClient:
    """One side of the comparison, in the two halves of a task: `submit()` -> a token; `collect(token)`."""

    submit: Callable[[], object]
    collect: Callable[[object], object]
    tasks: list[str]  # the id of every task it submitted

    def one_task(self) -> None:
        """A task end to end, as a run does it: submit, then collect (which waits for the first poll)."""
        self.collect(self.submit())


def _edit_client(base_url: str, data: bytes) -> _EditClient:
    """Our client, as the engine drives it: submit_edit, then wait_for_edit from the moment it returned (polls
    through the process's pacer, the image link fetched and decoded whole)."""
    tasks: list[str] = []

    def submit() -> tuple[str, float]:
        submitted = novita.submit_edit(data, PROMPT, IMAGE_TYPE, api_key=BENCH_KEY, base_url=base_url)
        tasks.append(submitted.task_id)
        return submitted.task_id, time.monotonic()

    def collect(token) -> novita.ReplaceResult:
        task_id, submitted_at = token
        return novita.wait_for_edit(task_id, IMAGE_TYPE, api_key=BENCH_KEY, base_url=base_url,
                                    submitted_at=submitted_at, progress=jobs.novita_stage)

    return _EditClient(submit, collect, tasks)


def _least_edit_client(base_url: str, data: bytes) -> _EditClient:
    """The least client of the async path: the body ours sends, joined as bytes; one POST; the task read on
    our client's schedule (so as many times); one GET of the image link, its body read in one go; one full
    decode with Pillow. Nothing else: one kept connection, no look-ups of proxy settings, no checks of the
    replies, the link or the image, no typed errors."""
    session = requests.Session()
    session.trust_env = False  # else every request reads the proxy settings of the environment afresh
    auth = {"Authorization": f"Bearer {BENCH_KEY}"}
    headers = {**auth, "Content-Type": "application/json"}
    rest = json.dumps({"prompt": novita.edit_instruction(PROMPT), "seed": -1, "output_format": IMAGE_TYPE})
    head, tail = b'{"image": "data:image/jpeg;base64,', b'", ' + rest[1:].encode()
    tasks: list[str] = []

    def submit() -> tuple[str, float]:
        body = b"".join((head, base64.b64encode(data), tail))
        reply = session.post(base_url + novita.EDIT_PATH, data=body, headers=headers, timeout=(5, 120))
        tasks.append(reply.json()["task_id"])
        return tasks[-1], time.monotonic()

    def collect(token) -> None:
        task_id, submitted_at = token
        time.sleep(max(0.0, submitted_at + novita.FIRST_POLL - time.monotonic()))
        while True:
            reply = session.get(base_url + novita.RESULT_PATH, params={"task_id": task_id}, headers=auth,
                                timeout=(5, 30)).json()
            if reply["task"]["status"] in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
                break
            time.sleep(novita.POLL_EVERY)
        with session.get(reply["images"][0]["image_url"], timeout=(5, 60), stream=True) as response:
            image = b"".join(response.iter_content(None))  # .content would read it 10 KB at a time
        with Image.open(io.BytesIO(image)) as decoded:
            decoded.load()

    return _EditClient(submit, collect, tasks)


@contextlib.contextmanager
def _threads_started_here() -> Iterator[list[str]]:
    """The names of threads the calling thread starts meanwhile (through threading, as requests, urllib3 or
    Pillow would; none of them does for this work). The stand-in's per-request threads are started by its own
    serving thread and are not counted."""
    caller, started = threading.current_thread(), []
    original = threading.Thread.start

    def start(thread, *args, **kwargs):
        if threading.current_thread() is caller:
            started.append(thread.name)
        return original(thread, *args, **kwargs)

    threading.Thread.start = start
    try:
        yield started
    finally:
        threading.Thread.start = original


def _task_cpu(sides: tuple[_EditClient, ...], rounds: int,
              per_round: int) -> list[tuple[list[float], list[float]]]:
    """Per side, the CPU seconds of each task, of the calling thread and of the process: in each round each side
    submits `per_round` tasks in turn, then, once all have ended at the stand-in and are due for their first
    poll, collects them in turn. The same calls and the same wire work as a task end to end, without the idle
    second before the first poll between two samples."""
    spent = [([], []) for _ in sides]
    for _ in range(rounds):
        pending = []
        for _ in range(per_round):
            for index, side in enumerate(sides):
                thread, process = time.thread_time(), time.process_time()
                token = side.submit()
                pending.append((index, token, time.thread_time() - thread, time.process_time() - process))
        time.sleep(max(EDIT_LATENCY, novita.FIRST_POLL))  # every task ended, every first poll due
        for index, token, thread_spent, process_spent in pending:
            thread, process = time.thread_time(), time.process_time()
            sides[index].collect(token)
            spent[index][0].append(thread_spent + time.thread_time() - thread)
            spent[index][1].append(process_spent + time.process_time() - process)
    return spent


def edit_client_vs_least(size: tuple[int, int], rounds: int, per_round: int) -> Line:
    """Our async client's CPU for one task ÷ the least client's doing the same wire work, in CPU of the
    calling thread, against a stand-in whose tasks take EDIT_LATENCY s: medians of rounds * per_round tasks."""
    from tests.novita_stub import NovitaStub

    prepared = images.prepare(photo(size, seed=1), "IMG_0001.jpg")
    with NovitaStub(latency=EDIT_LATENCY) as stub, _threads_started_here() as started:
        ours = _edit_client(stub.base_url, prepared.data)
        least = _least_edit_client(stub.base_url, prepared.data)
        walls = []
        for side in (ours, least):  # warm-up: one task each end to end (connections, first-use costs)
            wall = time.perf_counter()
            side.one_task()
            walls.append(time.perf_counter() - wall)
        # Thread CPU is the figure because the stand-in runs in this process: it decodes the photo, renders
        # and encodes the image on its own request threads, which process CPU would count on both sides (and
        # which no client changes). The calling thread's clock holds all of a client's work only if the client
        # starts no thread of its own: `started` checks that for both, over every task measured here.
        (ours_cpu, ours_process), (least_cpu, least_process) = _task_cpu((ours, least), rounds, per_round)
        bodies = {request.body for request in stub.requests if request.kind == "submit"}
        polls = {name: {stub.polls(task) for task in side.tasks}
                 for name, side in (("ours", ours), ("least", least))}
        fetches = len(stub.image_fetches())
    if started:
        raise RuntimeError(f"a client started threads ({', '.join(started)}): thread CPU would miss their work")
    if len(bodies) != 1:
        raise RuntimeError("the least client's body differs from ours")
    if polls["ours"] != polls["least"] or len(polls["ours"]) != 1 or fetches != len(ours.tasks) + len(least.tasks):
        raise RuntimeError(f"the two clients did different wire work: polls per task {polls}, {fetches} image GETs")
    med, ms = statistics.median, lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731
    count, reads = len(ours_cpu), polls["ours"].pop()
    return Line(f"edit_client_vs_least_client_{size[0]}x{size[1]}", med(ours_cpu) / med(least_cpu), "<=", 1.10,
                detail=f"median client-thread CPU {ms(med(ours_cpu))} vs {ms(med(least_cpu))} "
                       f"({(med(ours_cpu) - med(least_cpu)) * 1000:+.1f} ms a task), {count} tasks each, submitted "
                       f"{per_round} at a time in turn, collected in turn; a task: 1 POST of "
                       f"{len(bodies.pop()) / 1e6:.1f} MB, {reads} poll{'s' if reads != 1 else ''}, 1 GET of a "
                       f"{IMAGE_TYPE.upper()}, 1 full decode; process CPU, the stand-in's threads included, "
                       f"{ms(med(ours_process))} vs {ms(med(least_process))}; one task end to end {walls[0]:.2f} vs "
                       f"{walls[1]:.2f} s wall "
                       f"(tasks of {EDIT_LATENCY:g} s, first poll {novita.FIRST_POLL:g} s after the POST)")


@contextlib.contextmanager
def _pacer_releases() -> Iterator[list[float]]:
    """time.monotonic() each time the process's poll pacer lets a poll go, while installed."""
    pacer, released = novita._pacer, []
    original = pacer.turn

    def turn() -> None:
        original()
        released.append(time.monotonic())

    pacer.turn = turn
    try:
        yield released
    finally:
        del pacer.turn  # the class's method again


def _peak_rate(times: list[float], gaps: int) -> float:
    """The highest rate in `times` (sorted) over any `gaps` consecutive gaps: events spaced 1/r s apart measure
    r, and a hair over when some land a few milliseconds off their slots, where a count in a one-second window
    would jump to r + 1."""
    spans = [later - earlier for earlier, later in zip(times, times[gaps:])]
    return gaps / min(spans) if spans else 0.0


def edit_polls(task_seconds: float = 10.0, in_flight: int = 10, burst_seconds: float = 2.0) -> Line:
    """Task-result reads the stand-in receives for one `task_seconds` task through our client (budget 6); in
    the detail, the peak rate of reads at the stand-in with `in_flight` tasks of `burst_seconds` at once, each
    in its own thread, all through the process's pacer."""
    from tests.novita_stub import NovitaStub

    data = images.prepare(photo((640, 480), seed=500), "IMG_0500.jpg").data  # the photo does not matter here
    with NovitaStub(latency=task_seconds) as stub:
        client = _edit_client(stub.base_url, data)
        started = time.perf_counter()
        client.one_task()
        wall = time.perf_counter() - started
        polls = stub.polls(client.tasks[0])
    with NovitaStub(latency=burst_seconds) as stub, _pacer_releases() as released:
        client, errors = _edit_client(stub.base_url, data), []

        def run() -> None:
            try:
                client.one_task()
            except Exception as exc:  # noqa: BLE001 - said below, after every thread ended
                errors.append(exc)

        workers = [threading.Thread(target=run, name=f"bench-task-{index}") for index in range(in_flight)]
        burst = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        burst = time.perf_counter() - burst
        if errors:
            raise RuntimeError(f"{len(errors)} of {in_flight} tasks failed: {errors[0]!r}")
        times = sorted(request.received_at for request in stub.requests if request.kind == "poll")
    closest = min((later - earlier for earlier, later in zip(times, times[1:])), default=0.0)
    gaps = round(novita.POLLS_PER_SECOND)
    return Line(f"edit_polls_per_task_{task_seconds:g}s", polls, "<=", 6, unit="polls", digits=0,
                detail=f"task-result reads of one {task_seconds:g} s task through our client (first "
                       f"{novita.FIRST_POLL:g} s after the POST, then every {novita.POLL_EVERY:g} s), {wall:.1f} s "
                       f"to its decoded image; {in_flight} tasks of {burst_seconds:g} s in flight at once: "
                       f"{len(times)} polls in {burst:.1f} s, peak {_peak_rate(times, gaps):.1f} polls/s at the "
                       f"stand-in over any {gaps} gaps in a row (closest two {closest * 1000:.0f} ms apart), "
                       f"{_peak_rate(sorted(released), gaps):.1f}/s as the pacer let them go (its bound: "
                       f"{novita.POLLS_PER_SECOND:g}/s)")


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
