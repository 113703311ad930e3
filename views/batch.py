"""Batch: many photos, one prompt, one format; progress per photo; retry the failed; one ZIP of all."""

import streamlit as st

from components import inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Batch")
st.caption("Many photos, one prompt, one format. Results join your history as they finish; download them "
           "all as one ZIP with a manifest.")

inputs.photos_uploader()
inputs.choices("batch")  # Background, Prompt, Output format
run_view.run_button("batch", "Replace all backgrounds", ":material/auto_fix_high:")
run_view.outcome("batch", label="batch")
