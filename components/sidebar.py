"""The sidebar every page shares: which engine runs, the person's own key, and this session's tally."""

from __future__ import annotations

import streamlit as st

from components import actions, gate, keeper, messages, session, tally
from services import config, engines, subject_model

ENGINE_CHOICES = {
    engines.AUTO: "Automatic",
    engines.NOVITA: "Novita (photographic scenes)",
    engines.OFFLINE: "Offline studio (no key, nothing leaves this server)",
}


def load_secrets() -> None:
    """Load .streamlit/secrets.toml when there is one, so its top-level keys reach the environment."""
    try:
        st.secrets.load_if_toml_exists()
    except Exception:  # a broken secrets file must not take the app down; the key then counts as unset
        pass


def _keep_key() -> None:
    """Move a pasted key out of the widget into the session, so it is never sent back to the page."""
    typed = (st.session_state.get("key_field") or "").strip()
    if typed:
        session.keep_key(typed)
    st.session_state["key_field"] = ""


def page_setup() -> None:
    """First lines of every page: session keys, the access gate, the shared sidebar. Pages do this rather
    than app.py because a run can start on the page file itself (AppTest's do)."""
    session.init()
    gate.require()
    session.follow_inputs()  # before any input is drawn: an input missing here was left on another page
    keeper.bind()  # the browser's kept results, before anything reads or adds to history
    actions.collect()  # results of runs that ended while the person was on another page
    sidebar()


def sidebar() -> None:
    """Render the shared sidebar."""
    with st.sidebar:
        st.radio("Engine", list(ENGINE_CHOICES), format_func=ENGINE_CHOICES.get, key=session.ENGINE_KEY,
                 persist_state="session",
                 help="Automatic uses Novita when a key is set and the offline studio otherwise.")
        if subject_model.default_path() is None:  # e.g. Python 3.13, where its wheel does not install
            st.caption(messages.ROUGHER_CUTOUTS)
        if session.own_key():
            st.success("Using your own Novita key for this session. It is not stored anywhere else.",
                       icon=":material/key:")
            if (balance := session.own_balance()) is not None:
                st.caption(f"Your Novita account's available balance: ${balance:,.2f}")
            st.button("Forget my key", on_click=session.forget_key, key="forget_key")
        else:
            if (pause := actions.owner_pause()) is not None:
                st.warning(f"Novita is paused for about {max(1, round(pause.seconds_left / 60))} min: "
                           f"{messages.PAUSED.get(pause.kind, 'Novita refused the app owner key')}. The owner "
                           "has been told.", icon=":material/pause_circle:")
            elif config.api_key():
                st.caption("Novita key: the app owner's key is set.")
            elif session.preference() == engines.AUTO:
                st.caption("No Novita key is set, so results are made by the offline studio. "
                           "Paste your own key to get photographic scenes.")
            else:
                st.caption("No Novita key is set. Paste your own key to get photographic scenes.")
            st.text_input("Your own Novita API key (optional)", type="password", key="key_field",
                          on_change=_keep_key, placeholder="sk_…",
                          help="Used for this browser session only: never saved, logged or shown.")
        tally.draw()
