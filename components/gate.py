"""The optional access gate: with APP_PASSWORD set, nothing renders until the session knows it."""

from __future__ import annotations

import hmac
import logging
import time

import streamlit as st

from services import config

log = logging.getLogger(__name__)
MAX_DELAY = 8.0  # seconds; each wrong answer waits longer, up to this


def _check() -> None:
    """on_change of the password field: compare in constant time; slow down every wrong answer."""
    expected = config.setting("APP_PASSWORD") or ""
    given = st.session_state.get("gate.password") or ""
    st.session_state["gate.password"] = ""  # never kept in the widget, never sent back to the page
    if hmac.compare_digest(given.encode(), expected.encode()):
        st.session_state["gate.open"] = True
        st.session_state["gate.failures"] = 0
        return
    failures = st.session_state.get("gate.failures", 0) + 1
    st.session_state["gate.failures"] = failures
    log.warning("access gate: wrong password (%d in this session)", failures)
    time.sleep(min(MAX_DELAY, 0.5 * 2 ** (failures - 1)))


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
    if st.session_state.get("gate.failures"):
        st.error("That password is not right. Check it with whoever shared this app and try again.")
    else:
        st.caption("Enter the team's password to use the app.")
    st.stop()
