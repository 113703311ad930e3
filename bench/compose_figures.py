"""Figures for the backgrounds that need no prompt (services.compose, services.masks), in the bench's lines.

    python -m bench.compose_figures [--quick]

Per-photo figures are medians of process CPU time (every thread of this process: OpenCV's and the model's
too), so they stay steady when other jobs share the CPUs; the wall times sit in the detail. Batch is wall time:
read it against the load average printed first. Photos are bench.photos' photo-like JPEGs (2 MP: 1632 x 1224).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable

from bench.harness import Line, load_average
from bench.photos import TWO_MP, photo
from services import compose, images, masks, offline

WHITE_SQUARE = compose.Recipe("colour", framing="square")
BLURRED = compose.Recipe("blur")
# name prefixes of every line, in print order
FIGURES = ("compose_colour_square_cached_", "compose_blurred_", "compose_first_run_over_mask_", "compose_batch_")


def lines(quick: bool = False) -> list[Line]:
    """Every figure: fewer repeats and smaller photos with `quick` (then the figures are not verdicts). A figure
    that breaks is an "error" line, and the others are still measured."""
    size = (800, 600) if quick else TWO_MP
    figures = ((colour_square_cached, (size, 3 if quick else 15)), (blurred, (size, 3 if quick else 15)),
               (first_run_over_mask, (size, 2 if quick else 7)), (batch, (size, 4 if quick else 20)))
    made = []
    for (figure, args), prefix in zip(figures, FIGURES):
        try:
            made.append(figure(*args))
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            traceback.print_exc(file=sys.stderr)
            made.append(Line(prefix.rstrip("_"), status="error", detail=f"{type(exc).__name__}: {str(exc)[:300]}"))
    return made


def _medians(fn: Callable[[], object], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(process CPU, wall) medians of `fn` in seconds."""
    for _ in range(warmup):
        fn()
    cpus, walls = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(cpus), statistics.median(walls)


def _name(prefix: str, size: tuple[int, int]) -> str:
    return f"{prefix}{size[0]}x{size[1]}"


def colour_square_cached(size: tuple[int, int], repeats: int) -> Line:
    """White square on a photo whose subject is cached: the cache look-up (hashing the bytes) and compose."""
    raw = photo(size, seed=500)
    masks.layers(raw)
    made = compose.compose(masks.layers(raw), WHITE_SQUARE)
    cpu, wall = _medians(lambda: compose.compose(masks.layers(raw), WHITE_SQUARE), repeats)
    png, _ = _medians(lambda: images.encode(made.image, "png"), max(3, repeats // 3), 1)
    jpeg, _ = _medians(lambda: images.encode(made.image, "jpeg"), max(3, repeats // 3), 1)
    return Line(_name("compose_colour_square_cached_", size), cpu * 1000, "<=", 150.0, unit="ms", digits=1,
                detail=f"median process CPU of {repeats}; wall {wall * 1000:.1f} ms; frame "
                       f"{made.size[0]}x{made.size[1]}, shadow on; encoding it after: PNG {png * 1000:.0f} ms, "
                       f"JPEG {jpeg * 1000:.0f} ms")


def blurred(size: tuple[int, int], repeats: int) -> Line:
    """Blurred original on a photo whose subject is cached: decoding the photo again (its background is
    needed), the cache look-up and compose."""
    raw = photo(size, seed=501)
    masks.layers(raw)

    def run() -> compose.Composed:
        return compose.compose(masks.layers(raw), BLURRED, images.open_image(raw))

    cpu, wall = _medians(run, repeats)
    decode, _ = _medians(lambda: images.open_image(raw), max(3, repeats // 3), 1)
    return Line(_name("compose_blurred_", size), cpu * 1000, "<=", 400.0, unit="ms", digits=1,
                detail=f"median process CPU of {repeats}, the photo's decode ({decode * 1000:.0f} ms) included; "
                       f"wall {wall * 1000:.1f} ms")


def first_run_over_mask(size: tuple[int, int], repeats: int) -> Line:
    """What a new photo's first white square adds to making its subject (decode and the offline engine's
    subject layers): hashing the bytes for the cache and compose, timed on their own, since the difference of
    two runs of the model is mostly the model's own spread. The end-to-end pair is in the detail: the first run
    through the cold cache and the subject alone, on the same photo, in turn."""
    firsts, alones, rests, walls = [], [], [], []
    raws = [photo(size, seed=600 + index) for index in range(repeats + 1)]
    masks.clear()
    compose.compose(masks.layers(raws[-1]), WHITE_SQUARE)  # the model loaded, its first run out of the way
    for index, raw in enumerate(raws[:repeats]):
        masks.clear()

        def first() -> compose.Composed:
            return compose.compose(masks.layers(raw), WHITE_SQUARE)

        def alone() -> object:
            return offline.subject_layers(images.open_image(raw))

        for name in (("first", "alone") if index % 2 == 0 else ("alone", "first")):
            wall, cpu = time.perf_counter(), time.process_time()
            (first if name == "first" else alone)()
            (firsts if name == "first" else alones).append(time.process_time() - cpu)
            if name == "first":
                walls.append(time.perf_counter() - wall)
        layers = masks.layers(raw)
        cpu = time.process_time()
        hashlib.sha256(raw).digest()
        compose.compose(layers, WHITE_SQUARE)
        rests.append(time.process_time() - cpu)
    masks.clear()
    rest, first, alone = (statistics.median(times) * 1000 for times in (rests, firsts, alones))
    paired = statistics.median(f - a for f, a in zip(firsts, alones)) * 1000
    return Line(_name("compose_first_run_over_mask_", size), rest, "<=", 150.0, unit="ms", digits=1,
                detail=f"median process CPU of hashing and compose, {repeats} new photos; end to end: first run "
                       f"{first:.0f} ms (wall {statistics.median(walls) * 1000:.0f} ms) vs the subject alone "
                       f"{alone:.0f} ms, paired difference {paired:+.0f} ms")


def batch(size: tuple[int, int], count: int, threads: int = 2) -> Line:
    """`count` new photos, white square, through `threads` threads: wall <= 1.2 x count x one photo's time /
    the cores in use. One photo's time is its time on one core, i.e. its process CPU time alone: a lone photo
    already runs the subject model on two threads (about 1.7x faster than on one), so its wall time would count
    those cores twice. The wall-time form is in the detail."""
    cores = min(threads, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    raws = [photo(size, seed=700 + index) for index in range(count + 4)]
    masks.clear()
    compose.compose(masks.layers(raws[-1]), WHITE_SQUARE)  # the model loaded, its first run out of the way
    alone_cpu, alone_wall = [], []
    for raw in raws[count : count + 3]:
        wall, cpu = time.perf_counter(), time.process_time()
        compose.compose(masks.layers(raw), WHITE_SQUARE)
        alone_cpu.append(time.process_time() - cpu)
        alone_wall.append(time.perf_counter() - wall)
    one_cpu, one_wall = statistics.median(alone_cpu), statistics.median(alone_wall)
    work: queue.Queue[bytes] = queue.Queue()
    for raw in raws[:count]:
        work.put(raw)
    failed: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                raw = work.get_nowait()
            except queue.Empty:
                return
            try:
                compose.compose(masks.layers(raw), WHITE_SQUARE)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)

    started, cpu = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    masks.clear()
    if failed:
        raise RuntimeError(f"{len(failed)} batch photos failed: {failed[0]!r}")
    ideal = count * one_cpu / cores
    return Line(f"compose_batch_{count}x{size[0]}x{size[1]}_t{threads}", wall / ideal, "<=", 1.2,
                detail=f"wall {wall:.2f} s vs {count} x {one_cpu:.2f} s (one photo alone, process CPU, median of 3) "
                       f"/ {cores} cores = {ideal:.2f} s; against one photo's wall time alone ({one_wall:.2f} s) the "
                       f"ratio is {wall / (count * one_wall / cores):.2f}; white square, each subject made fresh; "
                       f"batch process CPU {cpu:.2f} s; load average {load_average()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compose_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller photos: not verdicts")
    args = parser.parse_args(argv)
    print(f"# compose figures {'quick' if args.quick else 'full'}; load average {load_average()}", flush=True)
    made = lines(args.quick)
    for line in made:
        print(line, flush=True)
    return 1 if any(line.verdict == "MISS" for line in made) and not args.quick else 0


if __name__ == "__main__":
    raise SystemExit(main())
