"""Settings read at call time, and the rule that a key never crosses a network in clear text."""

import pytest

from services import config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("NOVITA_API_KEY", "NOVITA_BASE_URL", "NOVITA_TIMEOUT", "NOVITA_PRICE_PER_IMAGE"):
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


def test_the_server_runs_no_full_garbage_collection_after_every_script_run():
    """Streamlit's default collects all generations after each run, half of the server's CPU per result
    with many people at once (bench: sessions_cpu_per_result_vs_n1_n10); Python's own collector stays on."""
    import gc
    import tomllib

    from tests.conftest import ROOT

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False
    assert gc.isenabled()
