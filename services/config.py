"""Settings, read at call time: explicit argument → environment → default.

Streamlit exports top-level entries of `.streamlit/secrets.toml` as environment variables once the
secrets are loaded (app.py does that defensively), so reading the environment here covers both.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.novita.ai"
DEFAULT_TIMEOUT = 120.0  # Novita advises more than 60 s for image APIs
CONNECT_TIMEOUT = 10.0
PROMPT_MAX_CHARS = 500  # no limit is documented; long prompts only dilute the instruction
# Novita's calls that make a new background. The seed's replace-background was retired by Novita on
# 2026-07-22; Qwen-Image Edit is the image-edit model its docs still list, so it is the default.
NOVITA_MODELS = ("qwen-image-edit", "replace-background")
DEFAULT_NOVITA_MODEL = NOVITA_MODELS[0]


class ConfigError(ValueError):
    """A setting that cannot work; str(err) says how to fix it and never holds a secret."""


def setting(name: str, default: str | None = None) -> str | None:
    """Return the named setting from the environment, stripped, or `default` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def api_key(override: str | None = None) -> str | None:
    """The key to use: one a person pasted for their session, else the owner's `NOVITA_API_KEY`."""
    if override and override.strip():
        return override.strip()
    return setting("NOVITA_API_KEY")


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 — the only hosts plain http:// may reach."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(override: str | None = None) -> str:
    """The Novita base URL without a trailing slash; plain http is refused unless the host is loopback."""
    url = (override or setting("NOVITA_BASE_URL", DEFAULT_BASE_URL)).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = "NOVITA_BASE_URL must be a web address such as https://api.novita.ai."
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        msg = (
            "NOVITA_BASE_URL uses plain http:// to a host that is not this machine; "
            "use https:// so the API key never crosses a network in clear text."
        )
        raise ConfigError(msg)
    return url


def timeout(override: float | None = None) -> float:
    """Seconds to wait for Novita's reply (`NOVITA_TIMEOUT`), default 120."""
    if override is not None:
        value = override
    else:
        raw = setting("NOVITA_TIMEOUT")
        try:
            value = float(raw) if raw is not None else DEFAULT_TIMEOUT
        except ValueError:
            msg = f"NOVITA_TIMEOUT must be a number of seconds, such as 120 (it is {raw!r})."
            raise ConfigError(msg) from None
    if not value > 0:
        msg = "NOVITA_TIMEOUT must be more than 0 seconds; 120 is a good value."
        raise ConfigError(msg)
    return value


def novita_model() -> str:
    """Which Novita call makes a new background (`NOVITA_MODEL`): "qwen-image-edit" (default) or
    "replace-background" (the seed's call, retired by Novita on 2026-07-22; kept for a gateway that still
    serves it)."""
    raw = (setting("NOVITA_MODEL", DEFAULT_NOVITA_MODEL) or "").lower()
    if raw not in NOVITA_MODELS:
        msg = f"NOVITA_MODEL must be one of {', '.join(NOVITA_MODELS)} (it is {raw!r})."
        raise ConfigError(msg)
    return raw


def price_per_image() -> float:
    """Estimated dollars per Novita image (`NOVITA_PRICE_PER_IMAGE`), default $0.0255."""
    try:
        return max(0.0, float(setting("NOVITA_PRICE_PER_IMAGE", "0.0255")))
    except ValueError:
        return 0.0255


def max_images_per_session() -> int:
    """Novita images one session may make on the owner's key (`MAX_IMAGES_PER_SESSION`), default 25."""
    try:
        return max(0, int(setting("MAX_IMAGES_PER_SESSION", "25")))
    except ValueError:
        return 25


def password_lock_after(default: int) -> int:
    """Wrong passwords from one address before the gate locks it (`APP_PASSWORD_LOCK_AFTER`), at least 1."""
    try:
        return max(1, int(setting("APP_PASSWORD_LOCK_AFTER", str(default))))
    except ValueError:
        return default


def batch_concurrency() -> int:
    """How many photos of a batch run at once (`BATCH_CONCURRENCY`), default 4."""
    try:
        return min(8, max(1, int(setting("BATCH_CONCURRENCY", "4"))))
    except ValueError:
        return 4


DEFAULT_SEND_WORKERS = 32  # a 9th person at once waited a whole Novita reply for a thread at 8


def send_workers() -> int:
    """Requests to Novita out at once for the whole process (`SEND_WORKERS`), default 32: a send mostly waits
    on its socket, holding its request body, and the per-minute rate limit is what bounds the spend."""
    try:
        return min(64, max(1, int(setting("SEND_WORKERS", str(DEFAULT_SEND_WORKERS)))))
    except ValueError:
        return DEFAULT_SEND_WORKERS


def max_images_per_day() -> int:
    """Novita images the owner's key may make per UTC day, all sessions together (`MAX_IMAGES_PER_DAY`),
    default 200 (about $5 a day at the default price)."""
    try:
        return max(0, int(setting("MAX_IMAGES_PER_DAY", "200")))
    except ValueError:
        return 200


def owner_pause_seconds() -> float:
    """How long nothing is sent on the owner's key after Novita refused it for credit, key, access,
    verification or billing (`NOVITA_OWNER_PAUSE_SECONDS`), default 300."""
    try:
        return max(0.0, float(setting("NOVITA_OWNER_PAUSE_SECONDS", "300")))
    except ValueError:
        return 300.0


def history_ttl_hours() -> float:
    """Hours a result stays in the history store (`HISTORY_TTL_HOURS`), default 24; 0 keeps results in the
    browser session only, as before the store existed."""
    try:
        return max(0.0, float(setting("HISTORY_TTL_HOURS", "24")))
    except ValueError:
        return 24.0


def history_store_max_mb() -> float:
    """Megabytes the history store may hold for every browser together (`HISTORY_STORE_MAX_MB`), default 1024;
    past it the oldest results anywhere go first."""
    try:
        return max(1.0, float(setting("HISTORY_STORE_MAX_MB", "1024")))
    except ValueError:
        return 1024.0
