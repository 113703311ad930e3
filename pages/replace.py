"""Replace background: photo → background → prompt → format → run → slider → download, then the gallery."""

import streamlit as st

from components import inputs, runner, session
from components.sidebar import page_setup
from components.results import gallery, result_panel

page_setup()
st.title("Replace background")
st.caption("Give a photo, say where the subject should be, pick a format, and get it back with a new background.")

inputs.photo_picker()
cutout = inputs.background_picker()
inputs.prompt_box()
inputs.format_picker(cutout=cutout)

runner.engine_note(runner.engine_for("background"))
job = session.job()
st.button("Replace background", type="primary", disabled=job is not None, key="replace.run",
          icon=":material/auto_fix_high:", on_click=runner.request)
if job is not None:
    runner.wait(job)  # shows the steps, then reruns the page once the result is in history
runner.outcome()

history = session.history()
current = history.get(st.session_state["replace.current"])
if current is not None:
    result_panel(current, key="replace")

if len(history):
    st.divider()
    st.subheader("This session's results")
    gallery(history, key="replace.gallery", page_size=4,
            on_open=lambda item_id: st.session_state.update({"replace.current": item_id}))
