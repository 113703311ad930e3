"""History: every result of this session — reopen in the slider, download, delete, clear all."""

import streamlit as st

from components import keeper, run_view, session, touchup
from components.sidebar import page_setup
from components.results import gallery, result_panel
from services import export

page_setup()
st.title("History")
history = session.history()
if not len(history):
    st.info("No results yet. Replace a background on the main page and every attempt will appear here.",
            icon=":material/history:")
    st.page_link("views/replace.py", label="Go to Replace background", icon=":material/wallpaper:")
    st.stop()

st.caption(f"{len(history)} result{'s' if len(history) != 1 else ''} in this browser, newest first. "
           f"The latest {history.max_items} are kept; download the ones you want to keep.")
selected = history.get(session.page("history").opened) or next(iter(history))
result_panel(selected, key="history")
touchup.editor(selected, key="history")

left, right = st.columns(2)
rows = export.rows_for(history)
left.download_button("Download all as ZIP", data=lambda: export.zip_results(rows), file_name="history.zip",
                     mime="application/zip", on_click="ignore", key="history.zip", icon=":material/folder_zip:")
with right.popover("Clear all", icon=":material/delete_sweep:"):
    st.write(f"Delete all {len(history)} results? This cannot be undone.")
    st.button("Delete all", type="primary", key="history.clear", on_click=history.clear)

st.divider()
gallery(history, key="history.gallery", on_open=run_view.opener("history"))
keeper.what_is_kept()
