"""Replace background: photo → prompt → format → run → slider → download, then this session's gallery."""

import streamlit as st

from components import inputs, runner, session
from components.results import gallery, result_panel

st.title("Replace background")
st.caption("Give a photo, say where the subject should be, pick a format, and get it back with a new background.")

photo = inputs.photo_picker()
prompt = inputs.prompt_box()
image_type = inputs.format_picker()

engine = runner.engine()
runner.engine_note(engine)
job = session.job()
pressed = st.button("Replace background", type="primary", disabled=job is not None, key="replace.run",
                    icon=":material/auto_fix_high:")
retry = runner.outcome() if job is None else False

if (pressed or retry) and job is None:
    if photo is None:
        st.warning("Add a photo first: upload one, take one, or try a sample above.", icon=":material/image:")
    elif not prompt:
        st.warning("Write a prompt first: where should the subject be? Or click one of the examples.",
                   icon=":material/edit:")
    else:
        job = runner.start(photo, prompt, image_type, engine)
if job is not None:
    runner.wait(job)  # reruns the page once the result is in history

history = session.history()
current = history.get(st.session_state["replace.current"])
if current is not None:
    result_panel(current, key="replace")

if len(history):
    st.divider()
    st.subheader("This session's results")
    gallery(history, key="replace.gallery",
            on_open=lambda item_id: st.session_state.update({"replace.current": item_id}))
