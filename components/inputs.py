"""The inputs of the pages: the photo, the background wanted, the prompt, the output format, Variants' ideas and Batch's photos.
Each widget's value is read here only, by the reader beside the function that draws it."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components import session
from components.messages import NO_TRANSPARENT_JPEG, note_sentence
from components.text import escape_markdown
from services import samples
from services.uploads import MAX_PHOTOS
from services.config import PROMPT_MAX_CHARS



@dataclass(frozen=True)
class Form:
    """One run page's widgets by their keys: its view draws them and `actions.start` reads them, both from
    here, so a key is spelled once (a typo would silently read a widget's default)."""

    background: str
    prompt: str  # the Prompt box; on Variants, the idea boxes' common start ("variants.prompt0" …)
    format: str
    lock: str
    run: str


FORMS = {
    "replace": Form(background="background", prompt="prompt", format="format", lock="replace.lock",
                    run="replace.run"),
    "variants": Form(background="variants.background", prompt="variants.prompt", format="variants.format",
                     lock="variants.lock", run="variants.start"),
    "batch": Form(background="batch.background", prompt="batch.prompt", format="batch.format", lock="batch.lock",
                  run="batch.start"),
}
BATCH_UPLOAD = "batch.upload"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif", "avif", "bmp", "tif", "tiff", "gif"]
EXAMPLE_PROMPTS = [
    "in a warehouse",
    "on a marble kitchen counter, soft morning light",
    "on a sunny beach at sunset",
    "in a snowy pine forest",
    "in a bright modern office",
    "on a pastel studio backdrop",
]
FORMATS = {
    "PNG": "Lossless and sharp; biggest files.",
    "WEBP": "Small files for websites and chat.",
    "JPEG": "Works everywhere; good for photos.",
}


def photo_picker() -> session.Photo | None:
    """Upload, camera or sample; returns the prepared photo in use, showing its notices or the refusal."""
    upload, camera, sample = st.tabs(["Upload a photo", "Take a photo", "Try a sample"])
    with upload:
        st.file_uploader(
            "Photo", type=UPLOAD_TYPES, key="upload",
            help="JPEG, PNG, WEBP, HEIC (iPhone), AVIF, BMP, TIFF or GIF, up to 30 MB.",
        )
    with camera:
        # The camera asks for permission when shown, so it stays off until a person wants it.
        if st.toggle("Use my camera", key="camera_on"):
            st.camera_input("Take a photo", key="camera")
    with sample:
        st.pills("Sample photos", list(samples.SAMPLES), key="sample")

    photo = session.photo()  # follows the inputs' values as drawn in this run
    if session.photo_error():
        st.error(escape_markdown(session.photo_error()), icon=":material/image_not_supported:")
    if photo is not None:
        width, height = photo.prepared.original_size
        left, right = st.columns([1, 3], vertical_alignment="center")
        left.image(photo.chip, output_format="JPEG", alt=f"Your photo: {photo.name}")
        right.markdown(f"**Photo in use:** {escape_markdown(photo.name)}  \n{width} × {height} px")
        for notice in photo.prepared.notices:
            right.caption(note_sentence(notice))
    return photo


NO_PROMPT_NEEDED = "No prompt needed for this background; what you wrote is kept for when you switch back."


def prompt_box(key: str, *, needed: bool = True) -> str:
    """The Prompt text area with clickable examples (disabled, its text kept, when the Background chosen needs
    no prompt); returns the prompt stripped."""
    st.text_area(
        "Prompt", key=key, max_chars=PROMPT_MAX_CHARS, height=90, persist_state="session", disabled=not needed,
        placeholder="Where should the subject be? For example: on a marble counter, soft light",
    )
    if not needed:
        st.caption(NO_PROMPT_NEEDED)
        return prompt(key)
    st.pills("Ideas to start from", EXAMPLE_PROMPTS, key=f"{key}_example", on_change=_use_example, args=(key,),
             label_visibility="collapsed")
    return prompt(key)


def prompt(key: str) -> str:
    """The prompt typed in the Prompt box `key`, stripped."""
    return (st.session_state.get(key) or "").strip()


def _use_example(key: str) -> None:
    example = st.session_state.get(f"{key}_example")
    if example:
        st.session_state[key] = example
    st.session_state[f"{key}_example"] = None


def format_picker(key: str, *, cutout: bool = False) -> str:
    """The Output format choice; returns "png", "webp" or "jpeg". With `cutout`, JPEG gets a warning."""
    label = st.radio(
        "Output format", list(FORMATS), key=key, horizontal=True, persist_state="session",
        captions=list(FORMATS.values()),
    )
    if cutout and label == "JPEG":
        st.warning(NO_TRANSPARENT_JPEG, icon=":material/info:")
    return (label or "PNG").lower()


def image_type(key: str) -> str:
    """The output format chosen in the picker `key`: "png", "webp" or "jpeg"."""
    return (st.session_state.get(key) or "PNG").lower()


LOCK_LABEL = "Keep my subject exactly as it is"


def lock_box(key: str) -> bool:
    """The choice to lay the photo's own subject back over Novita's new scene; on by default."""
    st.checkbox(LOCK_LABEL, value=True, key=key, persist_state="session",
                help="Novita redraws the whole picture and can change a face, a label or a colour. With this on, "
                     "your subject is put back from your photo, at full resolution, over the new scene.")
    return keeps_subject(key)


def keeps_subject(key: str) -> bool:
    """Whether the choice under `key` asks to keep the subject exactly (the default while it was never shown)."""
    return bool(st.session_state.get(key, True))


IDEAS = 4


def ideas(*, needed: bool = True) -> None:
    """Variants' four idea boxes, two by two (disabled, their text kept, when no prompt is needed)."""
    left, right = st.columns(2)
    for i, column in enumerate([left, right] * (IDEAS // 2)):
        column.text_input(f"Idea {i + 1}", key=f"{FORMS['variants'].prompt}{i}", persist_state="session",
                          max_chars=PROMPT_MAX_CHARS, disabled=not needed,
                          placeholder=EXAMPLE_PROMPTS[i] if i < len(EXAMPLE_PROMPTS) else "")
    if not needed:
        st.caption(NO_PROMPT_NEEDED)


def idea_prompts() -> list[str]:
    """The ideas written, stripped, in order; empty boxes left out."""
    start = FORMS["variants"].prompt
    return [p for p in ((st.session_state.get(f"{start}{i}") or "").strip() for i in range(IDEAS)) if p]


def photos_uploader() -> None:
    """Batch's uploader: several photos, or ZIPs of photos."""
    st.file_uploader("Photos", type=UPLOAD_TYPES + ["zip"], accept_multiple_files=True, key=BATCH_UPLOAD,
                     help=f"Select several photos at once, or a ZIP of photos; up to {MAX_PHOTOS} in one batch.")


def uploaded_photos() -> list[tuple[str, bytes]]:
    """What is in Batch's uploader now, as (name, bytes)."""
    return [(f.name, f.getvalue()) for f in st.session_state.get(BATCH_UPLOAD) or []]


def choices(name: str) -> str:
    """Run page `name`'s Background choice (and what it asks for), its Prompt box (on Variants, the idea
    boxes) and its Output format, by the keys in FORMS; returns the background chosen."""
    from components import backgrounds  # it draws the Background choice; it imports nothing from here

    form = FORMS[name]
    background = backgrounds.picker(name, key=form.background)
    needed = backgrounds.needs_prompt(background)
    if name == "variants":
        ideas(needed=needed)
    else:
        prompt_box(form.prompt, needed=needed)
    format_picker(form.format, cutout=background == backgrounds.TRANSPARENT)
    return background
