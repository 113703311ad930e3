"""Names and prompts people give, made safe to show and to use in file names (plain Python)."""

from __future__ import annotations

# Characters that reorder the text around them (LRE…RLO, LRI…PDI, LRM/RLM, ALM): with them
# "photo‮gpj.exe" reads as "photoexe.jpg". They never belong in a name or a prompt shown back.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_REMOVE = {ord(ch): None for ch in BIDI_CONTROLS}


def without_bidi(text: str) -> str:
    """`text` with every bidirectional control character removed."""
    return text.translate(_REMOVE)
