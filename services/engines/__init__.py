"""Which engine makes a result: the registry of every engine, and the choice between them.

A person picks Novita, the offline studio, or Automatic (Novita when a key is configured, the offline studio
otherwise); a transparent cut-out is made on this server whichever is picked. Which Novita call "Novita"
means is the owner's setting `NOVITA_MODEL` (Qwen-Image Edit by default; the seed's replace-background was
retired by Novita on 2026-07-22), so the next retirement is a setting, not a rewrite. A new engine is one
module in this package and one line in REGISTRY.
"""

from __future__ import annotations

from services import config
from services.engines import composite, cutout, qwen_edit, seed, studio
from services.engines.base import COMPOSITE, CUTOUT, NOVITA, OFFLINE, Engine, Handle, Job
from services.novita import ReplaceResult

__all__ = ["AUTO", "COMPOSITE", "CUTOUT", "LABELS", "NOVITA", "OFFLINE", "REGISTRY", "Engine", "Handle", "Job",
           "ReplaceResult", "choose", "engine_for", "redraws"]

REGISTRY: dict[str, Engine] = {engine.name: engine for engine in (
    qwen_edit.ENGINE,
    seed.ENGINE,
    studio.ENGINE,
    cutout.ENGINE,
    composite.ENGINE,
)}
AUTO = "auto"
LABELS = {NOVITA: "Novita", OFFLINE: "Offline studio", CUTOUT: "Transparent cut-out", COMPOSITE: "Made here"}


def choose(preference: str, has_key: bool) -> str:
    """The engine family a run will use: the person's explicit pick, else Novita only when a key exists."""
    if preference in (NOVITA, OFFLINE):
        return preference
    return NOVITA if has_key else OFFLINE


def redraws(family: str) -> bool:
    """Whether the engine a run of `family` uses redraws the subject too: only then may it be laid back."""
    try:
        return engine_for(family).redraws
    except config.ConfigError:
        return False


def engine_for(family: str) -> Engine:
    """The engine that makes a run of `family`: for Novita, the call `NOVITA_MODEL` names (a setting that
    cannot work raises config.ConfigError, whose sentence says how to fix it)."""
    return REGISTRY[config.novita_model() if family == NOVITA else family]
