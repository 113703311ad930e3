"""Which engine makes a result, and one call that runs any of them with the same contract.

Novita when a key is configured, the offline engine otherwise; a person may pick either explicitly. A
transparent cut-out (the subject alone) is made on this server whichever of the two is picked.
"""

from __future__ import annotations

import time

from services import novita, offline
from services.novita import ReplaceResult

NOVITA = "novita"
OFFLINE = "offline"
CUTOUT = "cutout"
AUTO = "auto"
LABELS = {NOVITA: "Novita", OFFLINE: "Offline studio", CUTOUT: "Transparent cut-out"}
CUTOUT_PROMPT = "transparent cut-out"  # what a cut-out's history line and file name say in place of a prompt


def choose(preference: str, has_key: bool) -> str:
    """The engine a run will use: the person's explicit pick, else Novita only when a key exists."""
    if preference in (NOVITA, OFFLINE):
        return preference
    return NOVITA if has_key else OFFLINE


def replace_background(image: bytes, prompt: str, image_type: str, *, engine: str,
                       api_key: str | None = None) -> ReplaceResult:
    """Run `engine` on a prepared photo and return its result in `image_type` (PNG or WEBP for CUTOUT)."""
    if engine in (OFFLINE, CUTOUT):
        started = time.monotonic()
        if engine == CUTOUT:
            data = offline.transparent(image, image_type)
        else:
            data = offline.replace_background(image, prompt, image_type)
        return ReplaceResult(data, image_type, time.monotonic() - started)
    return novita.replace_background(image, prompt, image_type, api_key=api_key)
