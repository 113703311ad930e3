"""The shared HTTP client carries nothing from one person's request to the next (cookies, auth).

One pooled session serves every visitor of the app; the stand-in sends Set-Cookie on one key's reply and
the next request, made with another key, must arrive without it.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services import novita

pytestmark = pytest.mark.timeout(60)

FIRST_KEY = "sk_test_first_person_0000000000"
SECOND_KEY = "sk_test_second_person_111111111"


@pytest.fixture(autouse=True)
def fresh_client():
    """A new pooled session for each case, so one case's cookie cannot make another's fail or pass."""
    novita._session.cache_clear()
    yield
    novita._session.cache_clear()


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


def _send(stub, key: str, *, fails: bool = False) -> None:
    if fails:
        with pytest.raises(novita.NovitaError):
            novita.replace_background(_photo(), "in a warehouse", api_key=key, base_url=stub.base_url)
    else:
        novita.replace_background(_photo(), "in a warehouse", api_key=key, base_url=stub.base_url)


@pytest.mark.parametrize("cookie", [
    "session=first-person; Path=/",
    "session=first-person; Path=/; Domain=127.0.0.1; Max-Age=3600",
    "id=first-person; Path=/v3; HttpOnly; SameSite=Strict",
])
def test_a_cookie_set_on_one_keys_reply_is_not_sent_with_the_next(stub, cookie):
    stub.reply_headers = {"Set-Cookie": cookie}
    _send(stub, FIRST_KEY)
    stub.reply_headers = {}
    _send(stub, SECOND_KEY)
    first, second = stub.requests
    assert first.headers["Authorization"] == f"Bearer {FIRST_KEY}"
    assert second.headers["Authorization"] == f"Bearer {SECOND_KEY}"
    assert "Cookie" not in second.headers, "the shared client replayed a cookie set for another person"


def test_a_cookie_on_an_error_reply_is_not_kept_either(stub):
    stub.reply_headers = {"Set-Cookie": "trap=1; Path=/"}
    stub.script("401")
    _send(stub, FIRST_KEY, fails=True)
    stub.reply_headers = {}
    _send(stub, SECOND_KEY)
    assert all("Cookie" not in r.headers for r in stub.requests)


def test_the_shared_session_has_no_auth_and_an_empty_jar(stub):
    stub.reply_headers = {"Set-Cookie": "session=first-person; Path=/"}
    _send(stub, FIRST_KEY)
    session = novita._session()
    assert session.auth is None and not session.trust_env
    assert len(session.cookies) == 0
