"""This session's results and spend in the sidebar, and what is left of the key's budget this minute;
redrawn while a batch runs, so the spend grows as the results come in."""

from __future__ import annotations

import threading

import streamlit as st

from components import session
from components.runner import shared_limiter
from services import quota

_this_run = threading.local()  # each session's script runs in its own thread: the current run's box


def draw() -> None:
    """Put the tally in the sidebar (call inside `with st.sidebar`)."""
    _this_run.box = st.empty()
    refresh()


def refresh() -> None:
    """Redraw the tally drawn earlier in this run with the figures as they are now."""
    box = getattr(_this_run, "box", None)
    if box is not None:
        box.caption("\n\n".join(_figures()))  # one element, so the box can be redrawn in place


def _figures() -> list[str]:
    count, paid = len(session.history()), st.session_state["paid_images"]
    tally = f"This session: {count} result{'s' if count != 1 else ''} in history"
    if paid or session.api_key():
        tally += (f", {paid} Novita image{'s' if paid != 1 else ''}, "
                  f"about ${st.session_state['spend']:.2f} spent")
    lines = [tally + "."]
    key = session.api_key()
    if key:
        limiter = shared_limiter()
        try:
            left = limiter.remaining(quota.bucket_for(key))
        except Exception:  # a Redis hiccup must not take the sidebar down
            return lines
        whose = "your key" if st.session_state["user_api_key"] else "the shared key"
        lines.append(f"Novita images left this minute on {whose}: {left} of {limiter.limit}.")
    return lines
