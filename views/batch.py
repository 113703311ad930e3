"""Batch: many photos, one prompt, one format; progress per photo; retry the failed; one ZIP of all."""

import streamlit as st

from components import actions, backgrounds, inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Batch")
st.caption("Many photos, one prompt, one format. Results join your history as they finish; download them "
           "all as one ZIP with a manifest.")

form = inputs.FORMS["batch"]
inputs.photos_uploader()
background = backgrounds.picker("batch", key=form.background)
inputs.prompt_box(form.prompt, needed=backgrounds.needs_prompt(background))
inputs.format_picker(form.format, cutout=background == backgrounds.TRANSPARENT)

run_view.engine_note("batch")
st.button("Replace all backgrounds", type="primary", key=form.run, icon=":material/auto_fix_high:",
          disabled=actions.is_running("batch"), on_click=actions.start, args=("batch",))
run_view.outcome("batch", label="batch")
