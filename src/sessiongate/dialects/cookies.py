"""``Set-Cookie`` values for dialects whose session travels in a cookie, the ``Secure`` decision, and the cookie a
request presents.

Written out by hand rather than through :class:`http.cookies.SimpleCookie`: that class quotes values holding
characters it does not list (Express never does), and its ``Expires`` counts from the wall clock, where a
session's expiry comes from the service's clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from http.cookies import _unquote as unquote_cookie
from typing import Any, Literal
from urllib.parse import quote, unquote

from litestar import Request

from sessiongate.dialects.base import is_secure_request
from sessiongate.settings import Settings

__all__ = (
    "EPOCH",
    "SameSite",
    "cookie_is_secure",
    "encode_cookie_value",
    "expired_cookie",
    "http_date",
    "request_cookie",
    "set_cookie",
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SameSite = Literal["Lax", "Strict", "None"]
# RFC 6265 section 4.1.1: cookie-octet, i.e. visible ASCII but for '"', ',', ';' and '\'.
_COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# encodeURIComponent's unreserved characters; every other ASCII character becomes its %XX.
_UNRESERVED = "-_.!~*'()"
_ALL_UNRESERVED = re.compile(r"[0-9A-Za-z\-_.!~*'()]*")
_ASCII_ENCODED = tuple(chr(c) if chr(c).isalnum() or chr(c) in _UNRESERVED else f"%{c:02X}" for c in range(128))
# The ASCII characters encoded but '%': of an escape's characters, '%' and hex digits, only '%' is encoded itself.
_ENCODED_BUT_PERCENT = frozenset(chr(c) for c in range(128) if _ASCII_ENCODED[c] != chr(c) and chr(c) != "%")
# The escapes of an Express JSON cookie ("j%3A%7B%22..."). Each decodes to a character that is neither '%' nor a hex
# digit, so no replacement makes an escape of its neighbours: replacing each everywhere, in any order, decodes them.
_JSON_ESCAPES = (("%22", '"'), ("%2C", ","), ("%3A", ":"), ("%7B", "{"), ("%7D", "}"))


def request_cookie(request: Request[Any, Any, Any], name: str) -> str | None:
    """``request.cookies.get(name)``: the same header read as Litestar's parser reads it, without first building the
    map of all the request's headers that ``request.cookies`` builds, nor the parser's map of all its cookies (a
    cookie dialect reads one cookie per request, and nothing else of the headers)."""
    for key, value in request.scope["headers"]:
        if key.lower() == b"cookie":  # the first, as the header map's get finds it
            return _cookie_value(value.decode("latin-1"), name)
    return None


def _cookie_value(header: str, name: str) -> str | None:
    # litestar._parsers.parse_cookie_string(header).get(name), which unquotes every cookie of the header; its cache
    # misses when every client has a cookie of its own.
    if name and name not in header:  # a name is part of the header
        return None
    for part in reversed(header.split(";")):  # the last of a name wins, as it does in the parser's dict
        key, equals, value = part.partition("=")
        if not equals:
            key, value = "", key
        if key.strip() != name:
            continue
        value = value.strip()
        if value or name:  # the parser drops a part whose key and value are both empty
            return _unquote(value)
    return None


def _unquote(value: str) -> str:
    # unquote(unquote_cookie(value)), the parser's. unquote goes through bytes for a JSON cookie's many escapes: those
    # of JSON's punctuation are replaced directly, and a '%' left over (another escape, or none) sends the value there.
    if value.startswith('"'):  # anything else unquote_cookie returns as it is
        value = unquote_cookie(value)
    if "%" not in value:
        return value
    decoded = value
    for escape, char in _JSON_ESCAPES:
        decoded = decoded.replace(escape, char)
    return decoded if "%" not in decoded else unquote(value)


def cookie_is_secure(request: Request[Any, Any, Any], settings: Settings) -> bool:
    """Whether a cookie set in answer to ``request`` gets ``Secure``: when configured, or the request came over TLS."""
    return settings.secure_cookies or is_secure_request(request, trust_forwarded=settings.trust_forwarded)


def encode_cookie_value(text: str) -> str:
    """``text`` percent-encoded as Express encodes cookie values (``encodeURIComponent``), so any text fits."""
    # Every validate of a cookie dialect writes its cookie again, so ASCII text, all a dialect writes but a stored
    # non-ASCII value, avoids quote's detour through bytes: each character to encode that it holds is replaced
    # everywhere at once, '%' first so that no escape is encoded again. Text with none (a secret) comes back as it is.
    if _ALL_UNRESERVED.fullmatch(text):
        return text
    if not text.isascii():
        return quote(text, safe=_UNRESERVED)
    if "%" in text:
        text = text.replace("%", "%25")
    for char in _ENCODED_BUT_PERCENT.intersection(text):
        text = text.replace(char, _ASCII_ENCODED[ord(char)])
    return text


def http_date(when: datetime) -> str:
    """``when`` as an HTTP date (RFC 9110's IMF-fixdate, ``Wed, 26 Apr 2023 21:15:48 GMT``), as
    :func:`email.utils.format_datetime` with ``usegmt`` writes it, without its detour through a time tuple."""
    # ctime ("Wed Apr 26 21:15:48 2023", the day space-padded) has the same English names, written by C, not locale.
    day_name, month, day, clock, year = when.astimezone(UTC).ctime().split()
    return f"{day_name}, {day:0>2} {month} {year} {clock} GMT"


def set_cookie(
    name: str,
    value: str,
    *,
    expires_at: datetime | None,
    now: datetime,
    secure: bool,
    path: str = "/",
    domain: str | None = None,
    http_only: bool = True,
    same_site: SameSite = "Lax",
) -> str:
    """A ``Set-Cookie`` value, attributes in Express's order.

    Args:
        name: The cookie's name (an RFC 7230 token).
        value: The cookie's value, already encoded (see :func:`encode_cookie_value`).
        expires_at: When the cookie ends (``Max-Age`` from ``now`` and ``Expires``), or ``None`` for a browser
            session cookie.
        now: "Now" on the clock ``expires_at`` was computed with.
        secure: Add ``Secure`` (see :func:`cookie_is_secure`).
        path: The ``Path`` attribute.
        domain: The ``Domain`` attribute; ``None`` (the default) leaves it out, so the cookie is host-only.
        http_only: Add ``HttpOnly``.
        same_site: The ``SameSite`` attribute. ``None`` needs ``secure``, or browsers drop the cookie.

    Raises:
        ValueError: a name that is not a token, or a value or attribute that would break the header.
    """
    if not _is_token(name):
        msg = f"cookie name {name!r} is not a token"
        raise ValueError(msg)
    if not (
        _COOKIE_OCTETS.fullmatch(value)
        and (path == "/" or _COOKIE_OCTETS.fullmatch(path or ""))
        and (not domain or _COOKIE_OCTETS.fullmatch(domain))
    ):
        msg = f"cookie {name!r} has a value or attribute with characters a Set-Cookie header cannot carry"
        raise ValueError(msg)
    if same_site == "None" and not secure:
        msg = "SameSite=None cookies must be Secure"
        raise ValueError(msg)
    max_age = expires = ""
    if expires_at is not None:
        max_age = f"; Max-Age={max(0, int((expires_at - now).total_seconds()))}"
        expires = f"; Expires={http_date(expires_at)}"
    domain_attribute = f"; Domain={domain}" if domain else ""
    flags = ("; HttpOnly" if http_only else "") + ("; Secure" if secure else "")
    return f"{name}={value}{max_age}{domain_attribute}; Path={path}{expires}{flags}; SameSite={same_site}"


@lru_cache(maxsize=64)
def _is_token(name: str) -> bool:
    # A dialect's cookie has a name of its own, the same on every answer.
    return _TOKEN.fullmatch(name) is not None


def expired_cookie(
    name: str,
    value: str = "",
    *,
    secure: bool,
    path: str = "/",
    domain: str | None = None,
    http_only: bool = True,
    same_site: SameSite = "Lax",
) -> str:
    """A ``Set-Cookie`` value that makes clients drop the cookie at once (``Max-Age=0``, ``Expires`` in 1970).

    ``path`` and ``domain`` must be those the cookie was set with, or clients keep the original.
    """
    return set_cookie(
        name,
        value,
        expires_at=EPOCH,
        now=EPOCH,
        secure=secure,
        path=path,
        domain=domain,
        http_only=http_only,
        same_site=same_site,
    )
