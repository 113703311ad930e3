"""Variants: one photo, up to four prompts side by side; open the one you like in the slider."""

import streamlit as st

from components import backgrounds, inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Variants")
st.caption("One photo, up to four ideas side by side. Repeat a prompt to get several takes on it.")

inputs.photo_picker()
background = inputs.choices("variants")  # Background, the idea boxes, Output format
if not backgrounds.needs_prompt(background):
    st.caption("This background has no ideas to vary: one result is made.")
run_view.run_button("variants", "Make variants", ":material/grid_view:")
run_view.outcome("variants", label="variants", rows=False)
run_view.variant_grid()
