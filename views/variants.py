"""Variants: one photo, up to four prompts side by side; open the one you like in the slider."""

import streamlit as st

from components import actions, backgrounds, inputs, run_view
from components.sidebar import page_setup

page_setup()
st.title("Variants")
st.caption("One photo, up to four ideas side by side. Repeat a prompt to get several takes on it.")

form = inputs.FORMS["variants"]
inputs.photo_picker()
background = backgrounds.picker("variants", key=form.background)
inputs.ideas(needed=backgrounds.needs_prompt(background))
inputs.format_picker(form.format, cutout=background == backgrounds.TRANSPARENT)

run_view.engine_note("variants")
if not backgrounds.needs_prompt(background):
    st.caption("This background has no ideas to vary: one result is made.")
st.button("Make variants", type="primary", key=form.run, icon=":material/grid_view:",
          disabled=actions.is_running("variants"), on_click=actions.start, args=("variants",))
run_view.outcome("variants", label="variants", rows=False)
run_view.variant_grid()
