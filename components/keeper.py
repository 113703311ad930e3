"""Results that survive a reload: this browser's key, kept in a cookie, ties each session to the results the
store keeps for the browser. Streamlit reads cookies (`st.context.cookies`, sent with the page's socket) but
cannot set them, so a small component does that in the page itself (no iframe, so the cookie is the app's own).
"""

from __future__ import annotations

import logging
import re
import secrets

import streamlit as st

from components import session
from services import config, recovery, store

log = logging.getLogger(__name__)
COOKIE = "rbs_browser"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # what secrets.token_urlsafe(32) makes; anything else is replaced
# SameSite=None; Secure; Partitioned where the page is a secure context: a browser that blocks third-party
# cookies still keeps this one for the app when another site embeds it, in that site's partition only.
SET_COOKIE_JS = """
export default function (component) {
  const { data } = component;
  if (!data || !data.value) return;
  const where = window.isSecureContext ? "SameSite=None; Secure; Partitioned" : "SameSite=Lax";
  try {
    document.cookie = `${data.name}=${data.value}; Max-Age=${data.maxAge}; Path=/; ${where}`;
  } catch (refused) {}  // a sandboxed page keeps no cookie: results then last for the session, as before
}
"""
_set_cookie = st.components.v2.component("rbs_browser_key", js=SET_COOKIE_JS)


@st.cache_resource
def shared_store() -> store.Store | None:
    """The process's history store, from the settings; None when results are kept in the session only. Made
    once per process, which is when the tasks an earlier start left in flight are collected (never resent)."""
    try:
        kept = store.from_settings()
    except (config.ConfigError, store.StoreError, ImportError) as exc:  # the app works on, as before the store
        log.error("history store off: %s", exc)
        return None
    recovery.collect_orphans(kept)
    return kept


def _token() -> str:
    """This browser's key: the cookie sent with this session's socket, else a new random one."""
    if st.session_state["browser.token"] is None:
        sent = st.context.cookies.get(COOKIE)
        fine = isinstance(sent, str) and TOKEN.match(sent)  # AppTest has no browser: its cookies are not strings
        st.session_state["browser.token"] = sent if fine else secrets.token_urlsafe(32)
    return st.session_state["browser.token"]


def bind() -> None:
    """Every run, before anything reads history: tie this session's history to the browser's kept results
    (reading them in on the session's first run), and (re)set the cookie so the browser keeps its key."""
    kept = shared_store()
    if kept is None:
        return
    token = _token()
    owner = store.owner_of(token)
    history = session.history()
    if history.owner != owner:
        history.attach(kept, owner)
    else:
        history.sync()
    with st.sidebar:  # renders nothing; the sidebar keeps its empty slot out of the page's layout
        _set_cookie(key="browser.key", data={"name": COOKIE, "value": token, "maxAge": cookie_seconds()})


def cookie_seconds() -> int:
    """How long the browser keeps its key: twice the results' time-to-live, renewed on every visit, so the
    key outlives the newest result it points to."""
    return int(config.history_ttl_hours() * 2 * 3600)


def _forget() -> None:
    """Delete this browser's results from the store and give it a new key: the old one then names nothing."""
    count = len(session.history())
    if not session.history().clear():
        st.toast("Your results could not be deleted from the server just now. Press Forget my photos again in a "
                 "moment.", icon=":material/error:")
        return
    st.session_state["browser.token"] = secrets.token_urlsafe(32)
    session.forget_sources()  # the photos kept for Touch up go too
    st.toast(f"Deleted {count} result{'s' if count != 1 else ''} from the server. Nothing of them is kept.",
             icon=":material/delete_forever:")


def what_is_kept() -> None:
    """The line under a gallery: what is kept, where, for how long, for whom; and Forget my photos."""
    kept = session.history().store  # the shared store, once this browser's history is attached to it
    if kept is None:
        st.caption("Results stay only while this tab is open. Download the ones you want to keep.")
        return
    hours = config.history_ttl_hours()
    span = f"{hours:g} hour{'s' if hours != 1 else ''}"
    where = "in this app's storage" if isinstance(kept, store.S3Store) else "on this server"
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        cleared = "" if isinstance(kept, store.S3Store) else (
            " A restart of the app clears this server's disk, and them with it: download the ones you want to keep.")
        st.caption(f"Your results stay {where} for {span} after you make them, visible only in this browser.{cleared}")
        st.button("Forget my photos", key="keeper.forget", on_click=_forget, icon=":material/delete_forever:",
                  help="Deletes every result of this browser from the server now.")
