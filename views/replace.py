"""Replace background: photo → background → prompt → format → run → slider → download, then the gallery."""

import streamlit as st

from components import inputs, keeper, run_view, session, touchup
from components.results import gallery, result_panel
from components.sidebar import page_setup

page_setup()
st.title("Replace background")
st.caption("Give a photo, say where the subject should be, pick a format, and get it back with a new background.")

inputs.photo_picker()
inputs.choices("replace")  # Background, Prompt, Output format
run_view.run_button("replace", "Replace background", ":material/auto_fix_high:")
run_view.outcome("replace")  # while it runs: the steps; then the result is in history and opened here

history = session.history()
current = history.get(session.page("replace").opened)
if current is not None:
    result_panel(current, key="replace")
    touchup.editor(current, key="replace")  # Touch up, for a result that rests on the subject mask

if len(history):
    st.divider()
    st.subheader("Your results")
    gallery(history, key="replace.gallery", page_size=4, on_open=run_view.opener("replace"))
    keeper.what_is_kept()
