"""Benchmarks: `python -m bench` (full) or `python -m bench --quick` (CI: proves it still runs, < 60 s).

Every line is one figure measured in this run against a loopback Novita stand-in (tests/novita_stub.py)
with zero latency unless the line says otherwise: `name: value (budget op limit) PASS|MISS  [detail]`,
`name: value (report only)`, or `name: skipped|failed|broken|error (why)`.

Figures that are pure computation in this process (client overhead, the SDK comparison, page reruns) are
medians of process or script-thread CPU time, the two sides run alternately: on an idle machine that is
the wall time, and it stays steady when other jobs share the CPUs. The async client's figure is CPU of the
client's thread alone (the in-process stand-in works on threads of its own), so no task's length is in it.
The wall-clock figures sit in the detail. Batch, offline-engine, fairness and many-sessions figures are
wall time (the last two over a real app server driven over Streamlit's websocket, bench/sessions.py), so
read them against the load average printed in the first line. The 100 Mbit SDK figure is CPU plus each
body's time on the modelled link.

Exit status: 0 when every budget is met (always 0 with --quick unless a figure crashed), 1 when a budget
is missed, 2 when a figure could not be measured.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from bench import compose_figures, figures, memory, server_figures, touchup_figures
from bench.harness import Line, app_environment, load_average, quiet_logs
from bench.photos import FITS, PHONE_12MP, TWO_MP

LINK_MBIT = 100  # the modelled upload link of the SDK comparison: a server's link to a public API
# name prefixes of every figure line, in print order (tests/test_bench.py checks each one is printed)
FIGURES = ("client_overhead_2048x1536", "reply_decode_floor_2048x1536", "overhead_vs_floor_2048x1536",
           "client_overhead_4032x3024", "sdk_vs_ours_4032x3024_loopback", "sdk_vs_ours_4032x3024_100mbit",
           "sdk_vs_least_client_4032x3024_100mbit", "edit_client_vs_least_client_2048x1536",
           "edit_polls_per_task_10s",
           "rerun_20_items_vs_empty", "rerun_20_items_ms", "rerun_image_work_20_items", "slider_payload_12mp",
           "session_memory_", "batch_12x", "offline_seconds_", "offline_peak_rss_",
           *compose_figures.FIGURES, *touchup_figures.FIGURES, "fairness_single_beside_",
           "sessions_time_to_result_n1", "sessions_slowest_vs_cpu_bound_n", "sessions_cpu_per_result_vs_n1_n",
           "server_fairness_single_beside_", "server_rss_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="CI mode: fewer repeats, smaller photos where that keeps it under a minute, no SDK")
    args = parser.parse_args(argv)
    quick = args.quick
    quiet_logs()

    from tests.novita_stub import NovitaStub

    started = time.perf_counter()
    mode = "quick (fewer repeats, smaller photos: figures are not verdicts)" if quick else "full"
    print(f"# bench {mode}; load average {load_average()}", flush=True)
    lines: list[Line] = []

    def emit(name: str, make) -> None:
        try:
            made = make()
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            traceback.print_exc(file=sys.stderr)
            made = Line(name, status="error", detail=f"{type(exc).__name__}: {str(exc)[:300]}")
        for line in made if isinstance(made, list) else [made]:
            lines.append(line)
            print(line, flush=True)

    # The app-path figures run the seed's synchronous call (a gateway that still serves it): a task's time is
    # then the stand-in's latency alone, so they measure this app's own machinery. The async edit path, whose
    # polls set its pace, has its own two lines below.
    with NovitaStub(seed_retired=False) as stub, app_environment(stub.base_url):
        base = stub.base_url
        emit("client_overhead_2048x1536", lambda: figures.overhead_and_floor(base, FITS, 2 if quick else 9))
        if quick:  # the 12 MP comparisons are the slowest part and carry no verdict here
            for name in FIGURES[3:7]:
                emit(name, lambda name=name: Line(name, status="skipped", detail="--quick"))
        else:
            emit("client_overhead_4032x3024", lambda: figures.client_overhead(base, PHONE_12MP, 5, None))
            emit("sdk_vs_ours_4032x3024_loopback", lambda: figures.sdk_vs_ours(base, 5))
            with NovitaStub(upload_bits_per_second=LINK_MBIT * 1e6) as link:
                emit("sdk_vs_ours_4032x3024_100mbit", lambda: figures.sdk_vs_ours(link.base_url, 3, LINK_MBIT))
        # Qwen-Image Edit's async path, each figure over stand-ins of its own (tasks of 0.5, 10 and 2 s)
        emit("edit_client_vs_least_client_2048x1536",
             lambda: figures.edit_client_vs_least(FITS, 1 if quick else 3, 3 if quick else 7))
        if quick:  # a 10 s task is most of the quick run's time, and carries no verdict there
            emit("edit_polls_per_task_10s", lambda: Line("edit_polls_per_task_10s", status="skipped", detail="--quick"))
        else:
            emit("edit_polls_per_task_10s", figures.edit_polls)
        session = None

        def build():
            nonlocal session
            if quick:  # 19 small photos, the one in the slider from a photo that already fits
                session = figures.build_session(20, (640, 480), FITS)
            else:
                session = figures.build_session(20, PHONE_12MP, PHONE_12MP)
            return figures.reruns_and_payload(session, 3 if quick else 30, warmup=1 if quick else 2)

        emit("rerun_20_items_vs_empty", build)
        if session is not None:
            emit("session_memory_20_results", lambda: figures.session_memory(session))
        else:
            emit("session_memory_20_results", lambda: Line("session_memory_20_results", status="error",
                                                           detail="the session could not be built"))
        emit("batch_12x", lambda: figures.batch(stub, (640, 480), 1 if quick else 3))
        emit("offline_seconds_", lambda: figures.offline_seconds((800, 600) if quick else TWO_MP, 1 if quick else 3))
        if quick:  # two fresh app processes each run a 2 MP photo: too slow for the CI run
            emit("offline_peak_rss_", lambda: Line("offline_peak_rss_2mp_over_grabcut", status="skipped", detail="--quick"))
        else:
            emit("offline_peak_rss_", figures.offline_peak_rss)
        emit("compose_", lambda: compose_figures.lines(quick))
        emit("touchup_", lambda: touchup_figures.lines(quick))
        emit("fairness_single_beside_", lambda: figures.fairness((480, 360), 8 if quick else 20, 1 if quick else 3))
    # one real app server, driven over Streamlit's websocket protocol; it has its own stand-in
    emit("sessions_", lambda: server_figures.many_sessions((1, 3) if quick else (1, 5, 10, 20), 1 if quick else 3,
                                                            3 if quick else 10))
    emit("server_fairness_single_beside_",
         lambda: server_figures.offline_fairness((480, 360), 8 if quick else 20, 1 if quick else 3))
    if quick:  # 150 offline 12 MP photos through one server: minutes, not the CI run's seconds
        emit("server_rss_", lambda: Line("server_rss_5_sessions_x20_12mp", status="skipped", detail="--quick"))
    else:  # one more real app server, its memory against the smallest Community Cloud container
        emit("server_rss_", memory.lines)

    missed = [line.name for line in lines if line.verdict == "MISS"]
    errors = [line.name for line in lines if line.status == "error"]
    print(f"# {len(lines)} figures in {time.perf_counter() - started:.0f} s; "
          f"missed: {', '.join(missed) or 'none'}; errors: {', '.join(errors) or 'none'}", flush=True)
    if errors:
        return 2
    return 1 if missed and not quick else 0


if __name__ == "__main__":
    sys.exit(main())
