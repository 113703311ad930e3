"""The optional access gate: with APP_PASSWORD set, nothing renders until the session knows it."""

from __future__ import annotations

import hmac
import time

import streamlit as st

from services import config
from services.throttle import LOCK_AFTER, GateThrottle


@st.cache_resource(show_spinner=False)
def _throttle(lock_after: int) -> GateThrottle:
    """One schedule for every session of this server process: fresh sessions are paced like one."""
    return GateThrottle(lock_after=lock_after)


def throttle() -> GateThrottle:
    """The process-wide throttle, built from `APP_PASSWORD_LOCK_AFTER` (default 10)."""
    return _throttle(config.password_lock_after(LOCK_AFTER))


def _address() -> str | None:
    # The connection's peer as uvicorn reports it; None on this machine, and None or the proxy's address
    # behind a reverse proxy that uvicorn does not trust (FORWARDED_ALLOW_IPS), such as Community Cloud's.
    try:
        return st.context.ip_address
    except Exception:  # noqa: BLE001 - no connection (a script run without a browser) has no address
        return None


def _check() -> None:
    """on_change of the password field: wait for this address's turn, then compare in constant time."""
    expected = config.setting("APP_PASSWORD") or ""
    given = st.session_state.get("gate.password") or ""
    st.session_state["gate.password"] = ""  # never kept in the widget, never sent back to the page
    gate = throttle()
    turn = gate.admit(_address())
    if turn.refused:
        st.session_state["gate.retry_after"] = turn.retry_after
        return
    st.session_state["gate.retry_after"] = None
    right = False
    try:
        time.sleep(turn.wait)
        right = hmac.compare_digest(given.encode(), expected.encode())
    finally:
        gate.record(turn, right=right)
    if right:
        st.session_state["gate.open"] = True
        st.session_state["gate.failures"] = 0
    else:
        st.session_state["gate.failures"] = st.session_state.get("gate.failures", 0) + 1


def _wait_words(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"about {minutes} minutes" if minutes > 1 else ("a minute" if seconds > 20 else "a few seconds")


def is_open() -> bool:
    """True when no password is set or this session has given it."""
    return not config.setting("APP_PASSWORD") or bool(st.session_state.get("gate.open"))


def require() -> None:
    """Render only the gate and stop the script unless this session gave APP_PASSWORD."""
    if is_open():
        return
    st.title("Replace Background studio")
    st.text_input("Password", type="password", key="gate.password", on_change=_check,
                  help="This demo is shared inside a team; ask whoever sent you the link.")
    retry_after = st.session_state.get("gate.retry_after")
    if retry_after:
        st.error(f"Too many wrong passwords were tried from here, so none is checked for now. Wait "
                 f"{_wait_words(retry_after)} and try again.")
    elif st.session_state.get("gate.failures"):
        st.error("That password is not right. Check it with whoever shared this app and try again.")
    else:
        st.caption("Enter the team's password to use the app.")
    st.stop()
