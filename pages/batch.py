"""Batch: many photos, one prompt, one format; progress per photo; retry the failed; one ZIP of all."""

import streamlit as st

from components import batch_view, inputs, runner
from components.sidebar import page_setup

page_setup()
st.title("Batch")
st.caption("Many photos, one prompt, one format. Results join your history as they finish; download them "
           "all as one ZIP with a manifest.")

st.file_uploader("Photos", type=inputs.UPLOAD_TYPES + ["zip"], accept_multiple_files=True, key="batch.upload",
                 help="Select several photos at once, or a ZIP of photos; up to 50 in one batch.")
cutout = inputs.background_picker(key="batch.background")
inputs.prompt_box(key="batch.prompt")
inputs.format_picker(key="batch.format", cutout=cutout)

runner.engine_note(runner.engine_for("batch.background"))
st.button("Replace all backgrounds", type="primary", key="batch.start", icon=":material/auto_fix_high:",
          disabled=batch_view.is_running("batch.run"), on_click=batch_view.start_batch)
batch_view.outcome("batch.run", label="batch")
