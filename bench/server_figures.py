"""Figures over one real app server driven over Streamlit's websocket protocol (bench/sessions.py): many
people at once on the main page, and the offline engine's fairness between two sessions."""

from __future__ import annotations

import os
import statistics

from bench import sessions
from bench.harness import Line

LATENCY = 2.0  # the stand-in answers each photo this long after it arrives


def many_sessions(counts: tuple[int, ...], ones: int, budget_at: int) -> list[Line]:
    """One round per N in `counts` (N = 1 `ones` times, its medians taken as t1 and c), each session pressing
    Replace background at the same moment on its own 1024 × 768 photo. Budgets at N = `budget_at`: the
    slowest result ÷ t1 + (N − 1)·c/k, the least the CPUs allow, and CPU per result ÷ c."""
    plan = (1,) * ones + tuple(n for n in counts if n != 1)
    rounds = sessions.measure(plan, latency=LATENCY)
    single = rounds[:ones]
    t1 = statistics.median(r.slowest for r in single)
    c = statistics.median(r.cpu_per_result for r in single)
    k = os.cpu_count() or 1
    lines = [Line("sessions_time_to_result_n1", t1, unit="s",
                  detail=f"median of {ones} rounds; server CPU {c:.3f} s per result (c), beyond its idle "
                         f"{statistics.median(r.idle_rate for r in rounds) * 100:.1f} % of a CPU; stand-in "
                         f"answers in {LATENCY:g} s; photo-like 1024 × 768 JPEGs")]
    by_n = {r.sessions: r for r in rounds[ones:]}
    for n, r in by_n.items():
        lines.append(Line(f"sessions_time_to_result_n{n}", r.median, unit="s",
                          detail=f"median; slowest {r.slowest:.2f} s; server CPU {r.cpu_per_result:.3f} s per "
                                 f"result; bound t1 + (N−1)·c/k = {t1 + (n - 1) * c / k:.2f} s"))
    at = by_n[budget_at]
    bound = t1 + (budget_at - 1) * c / k
    lines.append(Line(f"sessions_slowest_vs_cpu_bound_n{budget_at}", at.slowest / bound, "<=", 1.2,
                      detail=f"slowest {at.slowest:.2f} s ÷ ({t1:.2f} s + {budget_at - 1}·{c:.3f} s ÷ {k} CPUs "
                             f"= {bound:.2f} s)"))
    lines.append(Line(f"sessions_cpu_per_result_vs_n1_n{budget_at}", at.cpu_per_result / c, "<=", 1.1,
                      detail=f"{at.cpu_per_result:.3f} s vs {c:.3f} s per result at N = 1"))
    return lines


def offline_fairness(size: tuple[int, int], count: int, repeats: int) -> Line:
    """A single offline photo over the server, beside another session's `count`-photo batch ÷ alone."""
    got = sessions.offline_fairness(size, count, repeats)
    return Line(f"server_fairness_single_beside_{count}_batch", got["beside"] / got["alone"], "<=", 2.0,
                detail=f"median {got['beside']:.2f} s beside the batch vs {got['alone']:.2f} s alone ({repeats} "
                       f"runs, {size[0]}×{size[1]}, press to result over the websocket); done "
                       f"{got['done_at']:.1f} s into a batch that took {got['batch']:.1f} s")
