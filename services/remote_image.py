"""Fetching an image a remote service points at: untrusted input, fetched only from where it may come from.

Novita's task result names its image by a presigned object-store URL. That URL is part of a reply, so a forged
or broken reply must not make this server fetch anything else: only `https` to a public address is fetched,
or the exact scheme, host and port of the Novita base URL (how a loopback stand-in serves it). No redirect is
followed, no credential is ever sent (the session has no auth, no cookies, no proxy settings from the host),
and the body is bounded in size and time.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

MAX_BYTES = 30 * 1024 * 1024  # the largest image Novita documents
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 10.0  # between two reads of the body: a link that trickles is given up on
TOTAL_SECONDS = 60.0  # the whole body, however it trickles
CHUNK = 64 * 1024  # small reads, so the whole-body deadline is looked at often


class RefusedURL(ValueError):
    """The URL names a place this server must not fetch from; `why` says which rule refused it."""

    def __init__(self, why: str) -> None:
        super().__init__(f"image URL refused: {why}")
        self.why = why


class FetchFailed(Exception):
    """The image could not be fetched; `status` is the HTTP status when the store answered (403/404: the
    link expired or is gone), None when the connection failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def expired(self) -> bool:
        """An object store answers an expired presigned link with 403 (or 404 once the object is gone)."""
        return self.status in (403, 404)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin:
    """The (scheme, host, port) of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme, 0)
    return Origin(scheme, (parts.hostname or "").lower(), port)


def check_url(url: str, trusted: str) -> None:
    """Raise RefusedURL unless `url` is `https` to a public address, or on the exact origin of `trusted` (the
    Novita base URL). A host name is resolved and every address it gives must be public."""
    try:
        parts = urlsplit(url)
        origin = origin_of(url)
    except ValueError:
        raise RefusedURL("not a URL") from None
    if parts.username or parts.password:
        raise RefusedURL("it carries credentials")
    if origin == origin_of(trusted):
        return
    if origin.scheme != "https":
        raise RefusedURL(f"scheme {origin.scheme or 'none'} to another host than Novita's")
    if not origin.host:
        raise RefusedURL("no host")
    for address in _addresses(origin.host, origin.port):
        if not address.is_global:
            raise RefusedURL(f"host {origin.host} is not a public address")


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RefusedURL(f"host {host} does not resolve") from None
    found = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not found:
        raise RefusedURL(f"host {host} does not resolve")
    return found


def _check_peer(response: requests.Response, url: str) -> None:
    """The address the connection actually reached must be public too: a name that resolved to a public
    address when checked and to a private one when connecting (DNS rebinding) is refused before its body is
    read."""
    try:
        peer = response.raw._connection.sock.getpeername()[0]  # urllib3 keeps the socket of a streamed reply
    except (AttributeError, OSError, IndexError, TypeError):
        return  # no socket to ask (a reused pooled connection already checked, or a test double)
    if not ipaddress.ip_address(peer.split("%", 1)[0]).is_global:
        raise RefusedURL(f"host {origin_of(url).host} connected to a non-public address")


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    """One pooled session for image links, apart from the API's: it never carries the API key."""
    session = requests.Session()
    session.trust_env = False  # no proxy or netrc credentials from the host
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.mount("https://", HTTPAdapter(max_retries=1, pool_maxsize=8))  # a GET may be sent again
    session.mount("http://", HTTPAdapter(max_retries=1, pool_maxsize=8))
    return session


def fetch(url: str, trusted: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The body at `url` after `check_url`, at most `max_bytes`, within TOTAL_SECONDS; no redirect, no
    credentials. Raises RefusedURL or FetchFailed."""
    check_url(url, trusted)
    started = time.monotonic()
    try:
        response = _session().get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False,
                                  stream=True, headers={"Accept": "image/*"})
    except requests.RequestException as exc:
        raise FetchFailed(f"image link: connection failed ({type(exc).__name__})") from None
    with response:
        if origin_of(url) != origin_of(trusted):
            _check_peer(response, url)
        if response.is_redirect or 300 <= response.status_code < 400:
            raise RefusedURL(f"a redirect (HTTP {response.status_code})")
        if response.status_code != 200:
            raise FetchFailed(f"image link answered HTTP {response.status_code}", response.status_code)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchFailed(f"image link offers {int(declared)} bytes, over {max_bytes}")
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchFailed(f"image link sent more than {max_bytes} bytes")
                if time.monotonic() - started > TOTAL_SECONDS:
                    raise FetchFailed(f"image link took more than {TOTAL_SECONDS:g} s")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FetchFailed(f"image link: the download broke ({type(exc).__name__})") from None
    return b"".join(chunks)
