"""Settings read at call time, and the rule that a key never crosses a network in clear text."""

import pytest

from services import config

SETTINGS = ("NOVITA_API_KEY", "NOVITA_BASE_URL", "NOVITA_TIMEOUT", "NOVITA_MODEL", "NOVITA_PRICE_PER_IMAGE",
            "MAX_IMAGES_PER_SESSION", "APP_PASSWORD_LOCK_AFTER", "BATCH_CONCURRENCY", "SEND_WORKERS",
            "MAX_IMAGES_PER_DAY", "NOVITA_OWNER_PAUSE_SECONDS", "HISTORY_TTL_HOURS", "HISTORY_STORE_MAX_MB",
            "NOVITA_RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_WINDOW_SECONDS", "RATE_LIMIT_REDIS_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    assert config.api_key() is None
    assert config.base_url() == "https://api.novita.ai"
    assert config.timeout() > 60


def test_session_key_wins_over_owner_key(monkeypatch):
    monkeypatch.setenv("NOVITA_API_KEY", "owner")
    assert config.api_key() == "owner"
    assert config.api_key("  mine  ") == "mine"
    assert config.api_key("   ") == "owner"


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:1", "http://127.3.4.5",
                                 "http://[::1]:9000", "https://example.com/", "https://api.novita.ai"])
def test_allowed_base_urls(url):
    assert config.base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8000", "http://localhost.evil.com",
                                 "ftp://api.novita.ai", "api.novita.ai", "http://"])
def test_refused_base_urls(url):
    with pytest.raises(config.ConfigError):
        config.base_url(url)


def test_env_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("NOVITA_TIMEOUT", "7.5")
    assert config.timeout() == 7.5
    monkeypatch.setenv("NOVITA_TIMEOUT", "soon")
    with pytest.raises(config.ConfigError, match="NOVITA_TIMEOUT"):
        config.timeout()
    monkeypatch.setenv("NOVITA_TIMEOUT", "0")
    with pytest.raises(config.ConfigError):
        config.timeout()


def test_price(monkeypatch):
    assert config.price_per_image() == pytest.approx(0.0255)
    monkeypatch.setenv("NOVITA_PRICE_PER_IMAGE", "0.05")
    assert config.price_per_image() == pytest.approx(0.05)


# (setting, what reads it, raw value → what it gives): unset or blank is the default, a value past a bound is
# held at the bound, and text that is not a number is the default (never an error: a page must still load)
@pytest.mark.parametrize(("name", "read", "cases"), [
    ("NOVITA_PRICE_PER_IMAGE", lambda: config.price_per_image(),
     {None: 0.0255, " ": 0.0255, "0.05": 0.05, "-1": 0.0, "cheap": 0.0255}),
    ("MAX_IMAGES_PER_SESSION", lambda: config.max_images_per_session(),
     {None: 25, "3": 3, " 3 ": 3, "0": 0, "-2": 0, "2.5": 25, "many": 25}),
    ("APP_PASSWORD_LOCK_AFTER", lambda: config.password_lock_after(5),
     {None: 5, "3": 3, "0": 1, "-4": 1, "2.5": 5, "x": 5}),
    ("BATCH_CONCURRENCY", lambda: config.batch_concurrency(),
     {None: 4, "2": 2, "0": 1, "9": 8, "100": 8, "1.5": 4, "four": 4}),
    ("SEND_WORKERS", lambda: config.send_workers(),
     {None: 32, "8": 8, "0": 1, "65": 64, "2.0": 32, "lots": 32}),
    ("MAX_IMAGES_PER_DAY", lambda: config.max_images_per_day(),
     {None: 200, "50": 50, "0": 0, "-1": 0, "1e3": 200, "none": 200}),
    ("NOVITA_OWNER_PAUSE_SECONDS", lambda: config.owner_pause_seconds(),
     {None: 300.0, "2.5": 2.5, "0": 0.0, "-3": 0.0, "soon": 300.0}),
    ("HISTORY_TTL_HOURS", lambda: config.history_ttl_hours(),
     {None: 24.0, "1.5": 1.5, "0": 0.0, "-1": 0.0, "a day": 24.0}),
    ("HISTORY_STORE_MAX_MB", lambda: config.history_store_max_mb(),
     {None: 1024.0, "10": 10.0, "0.5": 1.0, "-1": 1.0, "big": 1024.0}),
], ids=lambda value: value if isinstance(value, str) else "")
def test_numeric_settings_default_clamp_and_shrug_off_text(monkeypatch, name, read, cases):
    for raw, expected in cases.items():
        if raw is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, raw)
        got = read()
        assert got == pytest.approx(expected) and type(got) is type(expected), (name, raw, got)


def test_a_password_lock_default_below_one_is_still_one_but_text_gives_it_back(monkeypatch):
    monkeypatch.delenv("APP_PASSWORD_LOCK_AFTER", raising=False)
    assert config.password_lock_after(0) == 1
    monkeypatch.setenv("APP_PASSWORD_LOCK_AFTER", "x")
    assert config.password_lock_after(0) == 0


@pytest.mark.parametrize(("per_minute", "window", "expected"), [
    (None, None, (10, 60.0)), ("7", "2.5", (7, 2.5)), (" 7 ", " 30 ", (7, 30.0)), ("1.5", "0", (10, 0.0)),
    ("0", "-1", (1, -1.0)), ("lots", "a minute", (10, 60.0)),
])
def test_the_rate_limit_settings(monkeypatch, per_minute, window, expected):
    from services import quota

    for name, raw in (("NOVITA_RATE_LIMIT_PER_MINUTE", per_minute), ("RATE_LIMIT_WINDOW_SECONDS", window)):
        if raw is not None:
            monkeypatch.setenv(name, raw)
    limiter = quota.from_settings()
    assert type(limiter) is quota.MemoryLimiter and (limiter.limit, limiter.window) == expected


def test_the_rate_limit_settings_are_read_by_config(monkeypatch):
    assert (config.rate_limit_per_minute(), config.rate_limit_window_seconds()) == (config.DEFAULT_PER_MINUTE, 60.0)
    assert config.rate_limit_redis_url() is None
    monkeypatch.setenv("RATE_LIMIT_REDIS_URL", "  redis://127.0.0.1:6379/0 ")
    monkeypatch.setenv("NOVITA_RATE_LIMIT_PER_MINUTE", "-3")
    assert config.rate_limit_redis_url() == "redis://127.0.0.1:6379/0" and config.rate_limit_per_minute() == -3


def test_novita_model(monkeypatch):
    monkeypatch.delenv("NOVITA_MODEL", raising=False)
    assert config.novita_model() == "qwen-image-edit"
    monkeypatch.setenv("NOVITA_MODEL", " Replace-Background ")
    assert config.novita_model() == "replace-background"
    monkeypatch.setenv("NOVITA_MODEL", "sdxl")
    with pytest.raises(config.ConfigError, match="NOVITA_MODEL"):
        config.novita_model()


def test_timeout_override_wins_and_must_be_positive(monkeypatch):
    monkeypatch.setenv("NOVITA_TIMEOUT", "soon")
    assert config.timeout(3) == 3
    with pytest.raises(config.ConfigError, match="more than 0"):
        config.timeout(0)
    monkeypatch.setenv("NOVITA_TIMEOUT", "-1")
    with pytest.raises(config.ConfigError, match="more than 0"):
        config.timeout()


def test_the_server_runs_no_full_garbage_collection_after_every_script_run():
    """Streamlit's default collects all generations after each run, half of the server's CPU per result
    with many people at once (bench: sessions_cpu_per_result_vs_n1_n10); Python's own collector stays on."""
    import gc
    import tomllib

    from tests.conftest import ROOT

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False
    assert gc.isenabled()
