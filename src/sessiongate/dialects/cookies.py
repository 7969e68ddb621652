"""``Set-Cookie`` values for dialects whose session travels in a cookie, the ``Secure`` decision, and the cookie a
request presents.

Written out by hand rather than through :class:`http.cookies.SimpleCookie`: that class quotes values holding
characters it does not list (Express never does), and its ``Expires`` counts from the wall clock, where a
session's expiry comes from the service's clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from litestar import Request
from litestar._parsers import parse_cookie_string

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
_ASCII_ENCODED = tuple(chr(c) if chr(c).isalnum() or chr(c) in _UNRESERVED else f"%{c:02X}" for c in range(128))
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def request_cookie(request: Request[Any, Any, Any], name: str) -> str | None:
    """``request.cookies.get(name)``: the same header read by the same parser, without first building the map of all
    the request's headers that ``request.cookies`` builds (a cookie dialect reads one cookie per request, and nothing
    else of the headers)."""
    for key, value in request.scope["headers"]:
        if key.lower() == b"cookie":  # the first, as the header map's get finds it
            return parse_cookie_string(value.decode("latin-1")).get(name)
    return None


def cookie_is_secure(request: Request[Any, Any, Any], settings: Settings) -> bool:
    """Whether a cookie set in answer to ``request`` gets ``Secure``: when configured, or the request came over TLS."""
    return settings.secure_cookies or is_secure_request(request, trust_forwarded=settings.trust_forwarded)


def encode_cookie_value(text: str) -> str:
    """``text`` percent-encoded as Express encodes cookie values (``encodeURIComponent``), so any text fits."""
    # Every validate of a cookie dialect writes its cookie again: ASCII text, all a dialect writes but a stored
    # non-ASCII value, is looked up a character at a time, a third faster than quote's detour through bytes.
    if text.isascii():
        return "".join([_ASCII_ENCODED[ord(c)] for c in text])
    return quote(text, safe=_UNRESERVED)


def http_date(when: datetime) -> str:
    """``when`` as an HTTP date (RFC 9110's IMF-fixdate, ``Wed, 26 Apr 2023 21:15:48 GMT``), as
    :func:`email.utils.format_datetime` with ``usegmt`` writes it, without its detour through a time tuple."""
    when = when.astimezone(UTC)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT"
    )


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
    if not _TOKEN.fullmatch(name):
        msg = f"cookie name {name!r} is not a token"
        raise ValueError(msg)
    if not _COOKIE_OCTETS.fullmatch(value) or any(not _COOKIE_OCTETS.fullmatch(a or "") for a in (path, domain)):
        msg = f"cookie {name!r} has a value or attribute with characters a Set-Cookie header cannot carry"
        raise ValueError(msg)
    if same_site == "None" and not secure:
        msg = "SameSite=None cookies must be Secure"
        raise ValueError(msg)
    parts = [f"{name}={value}"]
    if expires_at is not None:
        parts.append(f"Max-Age={max(0, int((expires_at - now).total_seconds()))}")
    if domain:
        parts.append(f"Domain={domain}")
    parts.append(f"Path={path}")
    if expires_at is not None:
        parts.append(f"Expires={http_date(expires_at)}")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


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
