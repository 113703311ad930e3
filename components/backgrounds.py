"""The Background choice of every run page and what it asks for: a colour, the person's own backdrop photo,
the framing, the margin and the shadow. Each value is read here only, by the reader beside what draws it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from components.messages import refusal_sentence
from components.text import escape_markdown
from services import images

NEW_BACKGROUND, TRANSPARENT = "New background", "Transparent (subject only)"
PLAIN, OWN, BLURRED = "Plain colour", "My own background photo", "Blurred original"
CHOICES = {
    NEW_BACKGROUND: "Where the subject should be, as you describe it below; made by the engine the sidebar shows.",
    TRANSPARENT: "The subject alone, for slides and shop listings. PNG or WEBP (JPEG has no transparency).",
    PLAIN: "White or any colour, for shop listings.",
    OWN: "Your subject in front of a photo you upload.",
    BLURRED: "Your subject sharp, its own background softly blurred, like a portrait mode.",
}
SWATCHES = {"White": "#FFFFFF", "Light grey": "#EEEEEE", "Black": "#000000"}
COLOUR_NAMES = {"#FFFFFF": "white", "#EEEEEE": "light grey", "#000000": "black"}
FRAMINGS = {"Original": "original", "Square 1:1": "square", "Portrait 4:5": "portrait", "Landscape 16:9": "landscape"}
SHADOWED = (PLAIN, OWN)  # a contact shadow is on by default where the subject stands on something new
BACKDROP_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif", "avif", "bmp", "tif", "tiff"]
HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Look:
    """What the Background choice asks for, as the run engine takes it."""

    choice: str
    colour: str = "#FFFFFF"
    framing: str = "original"
    margin: float = 0.08
    shadow: bool = True
    backdrop: images.PreparedImage | None = None

    @property
    def made_here(self) -> bool:
        """A background this server makes from the photo alone (no engine, no prompt); a transparent cut-out
        is one too once it is framed."""
        return self.choice in (PLAIN, OWN, BLURRED) or (self.choice == TRANSPARENT and self.framing != "original")

    @property
    def label(self) -> str:
        """What history, file names and the manifest say in place of a prompt: "white square", "own backdrop"."""
        what = {PLAIN: COLOUR_NAMES.get(self.colour.upper(), self.colour.upper()), OWN: "own backdrop",
                BLURRED: "blurred original", TRANSPARENT: "transparent cut-out"}.get(self.choice, "")
        return what if self.framing == "original" else f"{what} {self.framing}"

    @property
    def recipe(self) -> dict:
        """The look as plain values for the engine (the backdrop as its prepared bytes)."""
        rgb = tuple(int(self.colour[i:i + 2], 16) for i in (1, 3, 5))
        background = {PLAIN: "colour", OWN: "backdrop", BLURRED: "blur"}.get(self.choice, "transparent")
        return {"background": background, "colour": rgb, "framing": self.framing, "margin": self.margin,
                "shadow": self.shadow, "backdrop": self.backdrop.data if self.backdrop else None}


def picker(page: str, key: str) -> str:
    """The Background choice under `key` and, beneath it, what the chosen background asks for; returns it."""
    choice = st.radio("Background", list(CHOICES), key=key, persist_state="session", captions=list(CHOICES.values()))
    if choice == PLAIN:
        _colour(page)
    elif choice == OWN:
        _backdrop(page)
    if choice != NEW_BACKGROUND:
        _framing(page)
    if choice in SHADOWED:
        st.checkbox("Soft shadow under the subject", value=True, key=f"{page}.shadow", persist_state="session",
                    help="Drawn from the subject's outline where it meets the ground; not the old shadow.")
    return choice


def _colour(page: str) -> None:
    key = f"{page}.colour"
    st.session_state.setdefault(key, SWATCHES["White"])
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    with left:
        st.color_picker("Colour", key=key, persist_state="session")
    with right:
        st.pills("Quick colours", list(SWATCHES), key=f"{page}.swatch", on_change=_use_swatch, args=(page,),
                 label_visibility="collapsed")


def _use_swatch(page: str) -> None:
    picked = st.session_state.get(f"{page}.swatch")
    if picked:
        st.session_state[f"{page}.colour"] = SWATCHES[picked]
    st.session_state[f"{page}.swatch"] = None


def _backdrop(page: str) -> None:
    st.file_uploader("Background photo", type=BACKDROP_TYPES, key=f"{page}.backdrop",
                     help="It covers the whole frame: cropped to fit, never stretched. Up to 30 MB.")
    upload = st.session_state.get(f"{page}.backdrop")
    kept = st.session_state.get(f"{page}.backdrop.prepared")  # (file id, name, prepared or None, refusal)
    if upload is not None and (kept is None or kept[0] != upload.file_id):
        try:  # checked and prepared once per upload, with the same guards as any photo
            kept = (upload.file_id, upload.name, images.prepare(upload.getvalue(), upload.name), None)
        except images.ImageError as exc:
            kept = (upload.file_id, upload.name, None, refusal_sentence(exc))
        st.session_state[f"{page}.backdrop.prepared"] = kept
    if kept is None:
        return
    if kept[3]:
        st.error(escape_markdown(kept[3]), icon=":material/image_not_supported:")
        return
    width, height = kept[2].original_size
    # kept apart from the uploader, which forgets its file while another background is chosen
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption(f"Background photo: {escape_markdown(kept[1])}, {width} × {height} px")
        if upload is None:
            st.button("Remove", key=f"{page}.backdrop.remove", icon=":material/close:",
                      on_click=st.session_state.pop, args=(f"{page}.backdrop.prepared", None))


def _prepared_backdrop(page: str) -> images.PreparedImage | None:
    kept = st.session_state.get(f"{page}.backdrop.prepared")
    return kept[2] if kept else None


def _framing(page: str) -> None:
    label = st.radio("Framing", list(FRAMINGS), key=f"{page}.framing", horizontal=True, persist_state="session",
                     help="Square for marketplaces, 4:5 for social posts, 16:9 for slides: the subject centred "
                          "with a margin, the rest filled with the background.")
    if label not in (None, "Original"):
        st.slider("Margin", min_value=0, max_value=30, value=8, step=1, format="%d %%", key=f"{page}.margin",
                  persist_state="session", help="Space kept clear around the subject, as a share of the frame.")


def choice(key: str) -> str:
    """The Background choice under `key`."""
    return st.session_state.get(key) or NEW_BACKGROUND


def look(page: str, key: str) -> Look:
    """Everything the Background choice under `key` on `page` asks for, as chosen now."""
    chosen = choice(key)
    colour = st.session_state.get(f"{page}.colour") or SWATCHES["White"]
    framing = FRAMINGS.get(st.session_state.get(f"{page}.framing") or "Original", "original")
    margin = (st.session_state.get(f"{page}.margin", 8) if framing != "original" else 8) / 100
    shadow = bool(st.session_state.get(f"{page}.shadow", True)) and chosen in SHADOWED
    backdrop = _prepared_backdrop(page) if chosen == OWN else None
    return Look(chosen, colour if HEX.match(colour) else SWATCHES["White"],
                framing if chosen != NEW_BACKGROUND else "original", margin, shadow, backdrop)


def needs_prompt(chosen: str) -> bool:
    """Only a new background is made from words."""
    return chosen == NEW_BACKGROUND

