"""Replace Background studio: the router. Pages live in views/ (not pages/, which Streamlit would also list as pages of its own); each opens with `page_setup()` (session,
access gate, the shared sidebar in components/sidebar.py)."""

import logging

from services import malloc

# First, on the script's first run: the earliest the app's own code runs in the server process, before the
# worker pools, the subject model's threads or a second session take arenas of their own (once per process).
malloc.tune()

import streamlit as st  # noqa: E402

from components import gate  # noqa: E402
from components.sidebar import load_secrets  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="Replace Background studio", page_icon=":material/wallpaper:", layout="centered")
load_secrets()

pages = [
    st.Page("views/replace.py", title="Replace background", icon=":material/wallpaper:", default=True),
    st.Page("views/variants.py", title="Variants", icon=":material/grid_view:"),
    st.Page("views/batch.py", title="Batch", icon=":material/photo_library:"),
    st.Page("views/history.py", title="History", icon=":material/history:"),
]
# Navigation is declared before the gate so no page can be reached around it; it stays hidden until open.
pg = st.navigation(pages, position="sidebar" if gate.is_open() else "hidden")
gate.require()
pg.run()
