"""Replace Background studio: the router. Pages live in pages/; each opens with `page_setup()` (session,
access gate, the shared sidebar in components/sidebar.py)."""

import logging

import streamlit as st

from components import gate
from components.sidebar import load_secrets

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="Replace Background studio", page_icon=":material/wallpaper:", layout="centered")
load_secrets()

pages = [
    st.Page("pages/replace.py", title="Replace background", icon=":material/wallpaper:", default=True),
    st.Page("pages/variants.py", title="Variants", icon=":material/grid_view:"),
    st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
]
# Navigation is declared before the gate so no page can be reached around it; it stays hidden until open.
pg = st.navigation(pages, position="sidebar" if gate.is_open() else "hidden")
gate.require()
pg.run()
