"""The backgrounds made on this server from the photo alone: a plain colour, the person's own backdrop photo,
the original blurred, or none (a framed transparent cut-out), each framed as asked (original, square, 4:5,
16:9), with a soft contact shadow where the subject stands on something new."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image

from services import compose, images, novita, touchup
from services.engines.base import COMPOSITE, Handle, Job, MadeAtOnce
from services.errors import Note, note

BEFORE_FILL = (236, 236, 236)  # around the photo on the slider's before side, where the frame is wider


class Composite(MadeAtOnce):
    name, family, remote, redraws = COMPOSITE, COMPOSITE, False, False

    def submit(self, job: Job) -> Handle:
        started = time.monotonic()
        made = framed(job.data, job.recipe or {}, job.scope, job.strokes)
        data = images.encode(made.image, job.image_type)
        result = novita.ReplaceResult(data, job.image_type, time.monotonic() - started, decoded=made.image,
                                      before=made.before, notices=made.notices)
        return Handle(self.name, result=result)



@dataclass(frozen=True)
class Framed:
    image: Image.Image  # RGB, or RGBA for a transparent cut-out
    before: Image.Image  # the photo placed in the same frame, for the slider's before side
    notices: tuple[Note, ...]


def framed(data: bytes, recipe: dict, scope: str = "", strokes: tuple = ()) -> Framed:
    """The photo's subject (its mask made once per photo and reused) on the background and in the frame
    `recipe` asks for, and the photo placed the same way for the slider's before side."""
    photo, layers = images.open_image(data), touchup.layers(data, scope, strokes)
    backdrop = recipe.get("backdrop")
    wanted = dict(background=recipe.get("background", "colour"), colour=tuple(recipe.get("colour", (255, 255, 255))),
                  backdrop=images.open_image(backdrop) if backdrop else None, framing=recipe.get("framing", "original"),
                  margin=float(recipe.get("margin", 0.08)), shadow=bool(recipe.get("shadow", True)))
    if wanted["background"] == "transparent":
        made = compose.transparent(layers, wanted["framing"], wanted["margin"])
    else:
        made = compose.compose(layers, compose.Recipe(**wanted), photo)
    notices = []
    if made.backdrop_upscaled:
        notices.append(note("backdrop_upscaled"))
    if made.anchored:
        notices.append(note("subject_anchored", edges=list(made.anchored)))
    return Framed(made.image, _placed_photo(photo, made), tuple(notices))


def _placed_photo(photo: Image.Image, made: compose.Composed) -> Image.Image:
    """The photo at the subject's scale and place in the result's frame, so the slider's two sides line up."""
    if made.size == photo.size and made.subject_scale == 1.0 and made.offset == (0, 0):
        return photo.convert("RGB")
    scale = made.subject_scale
    shown = photo.convert("RGB").resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                                        Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", made.size, BEFORE_FILL)
    canvas.paste(shown, made.offset)
    return canvas


ENGINE = Composite()
