"""Settings, read at call time: explicit argument → environment → default.

Streamlit exports top-level entries of `.streamlit/secrets.toml` as environment variables once the
secrets are loaded (app.py does that defensively), so reading the environment here covers both.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import TypeVar
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


Number = TypeVar("Number", int, float)


def _number(name: str, default: Number, cast: Callable[[str], Number], lo: Number | None = None,
            hi: Number | None = None, *, must_be: str | None = None) -> Number:
    """The named setting as a number: `cast` of its text, held within `lo`..`hi` (either may be None); unset or
    blank gives `default`, held likewise. Text `cast` refuses gives `default` as it is, so a page still loads,
    or, when `must_be` says what the setting takes, a ConfigError saying so."""
    raw = setting(name)
    if raw is None:
        value = default
    else:
        try:
            value = cast(raw)
        except ValueError:
            if must_be is None:
                return default
            msg = f"{name} must be {must_be} (it is {raw!r})."
            raise ConfigError(msg) from None
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value


def timeout(override: float | None = None) -> float:
    """Seconds to wait for Novita's reply (`NOVITA_TIMEOUT`), default 120."""
    if override is not None:
        value = override
    else:
        value = _number("NOVITA_TIMEOUT", DEFAULT_TIMEOUT, float, must_be="a number of seconds, such as 120")
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
    return _number("NOVITA_PRICE_PER_IMAGE", 0.0255, float, 0.0)


def max_images_per_session() -> int:
    """Novita images one session may make on the owner's key (`MAX_IMAGES_PER_SESSION`), default 25."""
    return _number("MAX_IMAGES_PER_SESSION", 25, int, 0)


def password_lock_after(default: int) -> int:
    """Wrong passwords from one address before the gate locks it (`APP_PASSWORD_LOCK_AFTER`), at least 1."""
    return _number("APP_PASSWORD_LOCK_AFTER", default, int, 1)


def batch_concurrency() -> int:
    """How many photos of a batch run at once (`BATCH_CONCURRENCY`), default 4."""
    return _number("BATCH_CONCURRENCY", 4, int, 1, 8)


DEFAULT_SEND_WORKERS = 32  # a 9th person at once waited a whole Novita reply for a thread at 8


def send_workers() -> int:
    """Requests to Novita out at once for the whole process (`SEND_WORKERS`), default 32: a send mostly waits
    on its socket, holding its request body, and the per-minute rate limit is what bounds the spend."""
    return _number("SEND_WORKERS", DEFAULT_SEND_WORKERS, int, 1, 64)


def max_images_per_day() -> int:
    """Novita images the owner's key may make per UTC day, all sessions together (`MAX_IMAGES_PER_DAY`),
    default 200 (about $5 a day at the default price)."""
    return _number("MAX_IMAGES_PER_DAY", 200, int, 0)


def owner_pause_seconds() -> float:
    """How long nothing is sent on the owner's key after Novita refused it for credit, key, access,
    verification or billing (`NOVITA_OWNER_PAUSE_SECONDS`), default 300."""
    return _number("NOVITA_OWNER_PAUSE_SECONDS", 300.0, float, 0.0)


DEFAULT_PER_MINUTE = 10  # Novita's default for replace-background, per key


def rate_limit_per_minute() -> int:
    """Novita images the owner's key may start per window (`NOVITA_RATE_LIMIT_PER_MINUTE`), default 10; the
    limiter holds it to at least 1."""
    return _number("NOVITA_RATE_LIMIT_PER_MINUTE", DEFAULT_PER_MINUTE, int)


def rate_limit_window_seconds() -> float:
    """The rate limit's window (`RATE_LIMIT_WINDOW_SECONDS`), default 60."""
    return _number("RATE_LIMIT_WINDOW_SECONDS", 60.0, float)


def rate_limit_redis_url() -> str | None:
    """Where replicas share the owner's budget (`RATE_LIMIT_REDIS_URL`); None keeps it in this process."""
    return setting("RATE_LIMIT_REDIS_URL")


def history_ttl_hours() -> float:
    """Hours a result stays in the history store (`HISTORY_TTL_HOURS`), default 24; 0 keeps results in the
    browser session only, as before the store existed."""
    return _number("HISTORY_TTL_HOURS", 24.0, float, 0.0)


def history_store_max_mb() -> float:
    """Megabytes the history store may hold for every browser together (`HISTORY_STORE_MAX_MB`), default 1024;
    past it the oldest results anywhere go first."""
    return _number("HISTORY_STORE_MAX_MB", 1024.0, float, 1.0)
