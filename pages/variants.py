"""Variants: one photo, up to four prompts side by side; open the one you like in the slider."""

import streamlit as st

from components import actions, inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Variants")
st.caption("One photo, up to four ideas side by side. Repeat a prompt to get several takes on it.")

inputs.photo_picker()
cutout = inputs.background_picker(key="variants.background")
inputs.ideas()
inputs.format_picker(key="variants.format", cutout=cutout)

run_view.engine_note("variants")
if cutout:
    st.caption("A transparent cut-out has no background to vary: one is made, whatever the ideas say.")
st.button("Make variants", type="primary", key="variants.start", icon=":material/grid_view:",
          disabled=actions.is_running("variants"), on_click=actions.start_variants)
run_view.outcome("variants", label="variants", rows=False)
run_view.variant_grid()
