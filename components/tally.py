"""This session's results and spend in the sidebar, what is left of the key's budget this minute, and what
is left today for everyone on the owner's key; redrawn while a run works, so the spend grows as results
come in. Every figure comes from the budget ledger."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import streamlit as st

from components import session
from components.actions import shared_ledger
from services import quota

_this_run = threading.local()  # each session's script runs in its own thread: the current run's box


def draw() -> None:
    """Put the tally in the sidebar (call inside `with st.sidebar`)."""
    _this_run.box, _this_run.text = st.empty(), None
    refresh()


def refresh() -> None:
    """Redraw the tally drawn earlier in this run with the figures as they are now."""
    box = getattr(_this_run, "box", None)
    if box is None:
        return
    text = "\n\n".join(_figures())
    if text != getattr(_this_run, "text", None):  # sent only when it changed: a run's progress calls this often
        _this_run.text = text
        box.caption(text)  # one element, so the box can be redrawn in place


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _figures() -> list[str]:
    account, count = session.account(), len(session.history())
    tally = f"This session: {_plural(count, 'result')} in history"
    if account.images or session.api_key():
        tally += f", {_plural(account.images, 'Novita image')}, about ${account.spend:.2f} spent"
    lines = [tally + "."]
    key = session.api_key()
    if not key:
        return lines
    ledger = shared_ledger()
    left = ledger.limiter.remaining(quota.bucket_for(key))
    whose = "your key" if session.own_key() else "the shared key"
    lines.append(f"Novita images left this minute on {whose}: {left} of {ledger.limiter.limit}.")
    if not session.own_key():
        today = ledger.today()
        hours, rest = divmod(int((today.resets_at - datetime.now(timezone.utc)).total_seconds()), 3600)
        lines.append(f"Left today for everyone on the shared key: {today.left} of {today.limit}; the count "
                     f"starts again at 00:00 UTC, in {hours} h {rest // 60:02d} min. This session may make "
                     f"{account.owner_left} more.")
    return lines
