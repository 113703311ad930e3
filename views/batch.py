"""Batch: many photos, one prompt, one format; progress per photo; retry the failed; one ZIP of all."""

import streamlit as st

from components import actions, backgrounds, inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Batch")
st.caption("Many photos, one prompt, one format. Results join your history as they finish; download them "
           "all as one ZIP with a manifest.")

inputs.photos_uploader()
background = backgrounds.picker("batch", key="batch.background")
inputs.prompt_box(key="batch.prompt", needed=backgrounds.needs_prompt(background))
inputs.format_picker(key="batch.format", cutout=background == backgrounds.TRANSPARENT)

run_view.engine_note("batch")
st.button("Replace all backgrounds", type="primary", key="batch.start", icon=":material/auto_fix_high:",
          disabled=actions.is_running("batch"), on_click=actions.start_batch)
run_view.outcome("batch", label="batch")
