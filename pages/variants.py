"""Variants: one photo, up to four prompts side by side; open the one you like in the slider."""

import streamlit as st

from components import batch_view, inputs, runner
from components.sidebar import page_setup

page_setup()
st.title("Variants")
st.caption("One photo, up to four ideas side by side. Repeat a prompt to get several takes on it.")

inputs.photo_picker()
cutout = inputs.background_picker(key="variants.background")
left, right = st.columns(2)
for i, column in enumerate([left, right, left, right]):
    column.text_input(f"Idea {i + 1}", key=f"variants.prompt{i}", persist_state="session",
                      max_chars=inputs.PROMPT_MAX_CHARS,
                      placeholder=inputs.EXAMPLE_PROMPTS[i] if i < len(inputs.EXAMPLE_PROMPTS) else "")
inputs.format_picker(key="variants.format", cutout=cutout)

runner.engine_note(runner.engine_for("variants.background"))
if cutout:
    st.caption("A transparent cut-out has no background to vary: one is made, whatever the ideas say.")
st.button("Make variants", type="primary", key="variants.start", icon=":material/grid_view:",
          disabled=batch_view.is_running("variants.run"), on_click=batch_view.start_variants)
batch_view.outcome("variants.run", label="variants", rows=False)
batch_view.variant_grid("variants.run")
