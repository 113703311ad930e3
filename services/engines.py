"""Which engine makes a result, and one call that runs either with the same contract.

Novita when a key is configured, the offline engine otherwise; a person may pick either explicitly.
"""

from __future__ import annotations

import time

from services import novita, offline
from services.novita import ReplaceResult

NOVITA = "novita"
OFFLINE = "offline"
AUTO = "auto"
LABELS = {NOVITA: "Novita", OFFLINE: "Offline studio"}


def choose(preference: str, has_key: bool) -> str:
    """The engine a run will use: the person's explicit pick, else Novita only when a key exists."""
    if preference in (NOVITA, OFFLINE):
        return preference
    return NOVITA if has_key else OFFLINE


def replace_background(image: bytes, prompt: str, image_type: str, *, engine: str,
                       api_key: str | None = None) -> ReplaceResult:
    """Run `engine` on a prepared photo and return its result in `image_type`."""
    if engine == OFFLINE:
        started = time.monotonic()
        data = offline.replace_background(image, prompt, image_type)
        return ReplaceResult(data, image_type, time.monotonic() - started)
    return novita.replace_background(image, prompt, image_type, api_key=api_key)
