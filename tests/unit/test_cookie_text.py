"""The hand-written encoders behind every cookie and digest a validate writes, and the reader of the cookie it reads,
agree with the library functions they stand in for, or with their first and plainer versions, on any input."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from litestar import Request
from litestar._parsers import parse_cookie_string

from sessiongate.dialects.cookies import EPOCH, SameSite, encode_cookie_value, http_date, request_cookie, set_cookie
from sessiongate.tokens.opaque import Digester
from sessiongate_issp import wire
from sessiongate_issp.mapping import cookie_out, iso

# Hypothesis bounds are naive; every moment drawn is aware, in UTC or seven hours behind it.
moments = st.datetimes(
    min_value=datetime(1970, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
)
# Any aware moment whose UTC date is in years 1 to 9999: any offset (UTC itself, another zero offset, odd minutes),
# any microsecond.
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
any_moments = st.datetimes(
    min_value=datetime(1, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.one_of(st.sampled_from([UTC, timezone(timedelta(0))]), offsets.map(timezone)),
)
ENCODE_URI_COMPONENT_SAFE = "-_.!~*'()"


@given(st.text())
def test_a_cookie_value_is_encoded_as_encode_uri_component_encodes_it(text: str) -> None:
    assert encode_cookie_value(text) == quote(text, safe="-_.!~*'()")


# ASCII, mostly: the text a dialect writes, which is encoded without quote; '%' among the characters encoded, as
# its escapes hold a '%' that must not be encoded again.
@given(st.text(st.one_of(st.characters(max_codepoint=127), st.sampled_from("%%%25é€")), max_size=80))
@example("%")
@example("%25%%2")
@example('j:{"sessionId":"a b","expires":"1970-01-01T00:00:00.000Z"}')
def test_ascii_text_with_percent_signs_is_encoded_as_encode_uri_component_encodes_it(text: str) -> None:
    assert encode_cookie_value(text) == quote(text, safe=ENCODE_URI_COMPONENT_SAFE)


def test_every_ascii_character_but_the_unreserved_is_percent_encoded() -> None:
    text = "".join(chr(c) for c in range(128))
    assert encode_cookie_value(text) == quote(text, safe="-_.!~*'()")
    assert encode_cookie_value('j:{"a": 1}') == "j%3A%7B%22a%22%3A%201%7D"
    unreserved = "".join(c for c in text if quote(c, safe=ENCODE_URI_COMPONENT_SAFE) == c)
    assert encode_cookie_value(unreserved) == unreserved


@given(moments)
def test_a_cookie_expiry_is_the_http_date_the_email_module_writes(moment: datetime) -> None:
    assert http_date(moment) == format_datetime(moment.astimezone(UTC), usegmt=True)


@given(any_moments)
@example(datetime(1, 1, 1, tzinfo=UTC))
@example(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
def test_an_http_date_is_the_email_modules_for_any_offset_and_any_year(moment: datetime) -> None:
    assert http_date(moment) == format_datetime(moment.astimezone(UTC), usegmt=True)


@given(moments)
def test_issp_writes_javascripts_to_iso_string(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert iso(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_iso_string(moment: datetime) -> str:
    """JavaScript's ``toISOString()`` (a four-digit year below 10000), written field by field."""
    u = moment.astimezone(UTC)
    date = f"{u.year:04d}-{u.month:02d}-{u.day:02d}"
    return f"{date}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond // 1000:03d}Z"


@given(any_moments)
@example(datetime(1, 1, 1, tzinfo=UTC))
@example(datetime(2023, 4, 26, 21, 15, 48, tzinfo=UTC))  # no fraction: isoformat writes none
@example(datetime(2023, 4, 26, 21, 15, 48, 999, tzinfo=UTC))  # under a millisecond
@example(datetime(2023, 4, 26, 21, 15, 48, 1000, tzinfo=UTC))
@example(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
def test_issps_iso_string_is_javascripts_for_any_offset_year_and_microsecond(moment: datetime) -> None:
    assert iso(moment) == to_iso_string(moment)


@given(st.binary(min_size=1, max_size=80), st.binary(min_size=1, max_size=80), st.text())
def test_a_digest_is_hmac_sha256_under_the_current_key_also_after_a_rotation(
    first: bytes, second: bytes, secret: str
) -> None:
    digester = Digester(first)
    assert digester.digest(secret) == hmac.new(first, secret.encode(), hashlib.sha256).hexdigest()
    digester.replace(second, older=[first])
    assert digester.digest(secret) == hmac.new(second, secret.encode(), hashlib.sha256).hexdigest()
    assert digester.matches(secret, hmac.new(first, secret.encode(), hashlib.sha256).hexdigest())


cookie_names = st.sampled_from(["sessionCookie", "sid", "a", ""])
header_names = st.sampled_from([b"cookie", b"Cookie", b"COOKIE", b"host", b"x-cookie", b"set-cookie"])
header_values = st.one_of(
    st.binary(max_size=60),
    st.lists(st.tuples(cookie_names, st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=4).map(
        lambda parts: "; ".join(parts).encode("utf-8")
    ),
)


@given(st.lists(st.tuples(header_names, header_values), max_size=5), cookie_names)
def test_a_requests_cookie_is_the_one_its_cookie_map_holds(headers: list[tuple[bytes, bytes]], name: str) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b"", "state": {}}
    request: Request[Any, Any, Any] = Request(scope)  # type: ignore[arg-type]
    assert request_cookie(Request(scope), name) == request.cookies.get(name)  # type: ignore[arg-type]


# What the parser treats specially, drawn often: an Express JSON cookie's escapes, in either case; other escapes, valid
# and not, of ASCII and of UTF-8 (whole, cut short, invalid); quotes, backslashes and octal escapes; '=' and spaces.
JSON_ESCAPES = ["%22", "%2C", "%3A", "%7B", "%7D", "%3a", "%7b", "%2c"]
ESCAPES = ["%25", "%41", "%20", "%2F", "%00", "%7F", "%C3%A9", "%E2%82%AC", "%F0%9F%98%80", "%C3", "%E2%82", "%80"]
ESCAPES += ["%FF", "%", "%2", "%G1", "%%41", "%3A%", "%2541", "%253A", "%2522"]  # the last: encoded twice
TRICKS = ['"', "\\", '\\"', "\\012", "\\377", "\\9", " ", "\t", "=", "é", "ÿ", "\x85", "\xa0"]
cookie_text = st.lists(
    st.one_of(
        st.sampled_from(JSON_ESCAPES),
        st.sampled_from(ESCAPES + TRICKS),
        st.text(st.characters(max_codepoint=255, exclude_characters=";"), max_size=6),
    ),
    max_size=8,
).map("".join)
quoted = cookie_text | cookie_text.map(lambda text: f'"{text}"')
cookie_keys = st.one_of(
    st.sampled_from(["sessionCookie", " sessionCookie ", "sessionCookie2", "xsessionCookie", "sid", "", " "]),
    st.text(st.characters(max_codepoint=255, exclude_characters=";="), max_size=4),
)


@st.composite
def cookie_headers_and_names(draw: st.DrawFn) -> tuple[str, str]:
    """A header of parts with a name, or none (which the parser files under ""), and a name to look for: mostly one
    of the header's, else one it may not hold."""
    parts = draw(st.lists(st.tuples(st.none() | cookie_keys, quoted), max_size=6))
    header = draw(st.sampled_from([";", "; ", " ;"])).join(v if k is None else f"{k}={v}" for k, v in parts)
    names = [k.strip() for k, _ in parts if k is not None]
    absent = st.sampled_from(["sessionCookie", "", "absent", "=", ";"])
    return header, draw(st.sampled_from(names) | absent if names else absent)


@given(cookie_headers_and_names())
@example(("sessionCookie=j%3A%7B%22sessionId%22%3A%22a%22%7D", "sessionCookie"))
@example(("sessionCookie=%3A; sessionCookie=%3a%25%2541%253A%22", "sessionCookie"))
@example(('sessionCookie="\\"%3A\\012"; x', "sessionCookie"))
@example((" = ; =x ; y", ""))
@settings(max_examples=200)
def test_a_requests_cookie_is_the_one_litestars_parser_finds_last_in_any_header(
    header_and_name: tuple[str, str],
) -> None:
    header, name = header_and_name
    scope = {"type": "http", "headers": [(b"cookie", header.encode("latin-1"))], "query_string": b"", "state": {}}
    request: Request[Any, Any, Any] = Request(scope)  # type: ignore[arg-type]
    assert request_cookie(request, name) == parse_cookie_string(header).get(name)


secrets_like = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=43, max_size=43)
hosts = st.sampled_from(["127.0.0.1", "testserver.local", "[::1]", "", "xn--bcher-kva.example"])


def issp_cookie_as_it_was_written(secret: str, *, expires_at: datetime | None, domain: str) -> str:
    """The cookie value as mapping.cookie_out first wrote it: wire.CookieOut's JSON after "j:", then encoded as
    encodeURIComponent encodes (quote, which the encoder equals above)."""
    value = wire.CookieOut(
        session_id=secret if expires_at is not None else "",
        expires=to_iso_string(expires_at or EPOCH),
        domain=domain,
    )
    return quote("j:" + msgspec.json.encode(value).decode(), safe=ENCODE_URI_COMPONENT_SAFE)


@given(secrets_like | st.text(), st.none() | any_moments, hosts | st.text())
@example("", None, "127.0.0.1")
@example('a"b\\c\n\x00\x7f\u2028é', datetime(2023, 4, 26, 21, 15, 48, tzinfo=UTC), '"\\:%')
def test_issps_cookie_is_its_json_object_encoded_as_before_for_any_secret_expiry_and_domain(
    secret: str, expires_at: datetime | None, domain: str
) -> None:
    expected = issp_cookie_as_it_was_written(secret, expires_at=expires_at, domain=domain)
    assert cookie_out(secret, expires_at=expires_at, domain=domain) == expected


def set_cookie_as_it_was_written(
    name: str,
    value: str,
    *,
    expires_at: datetime | None,
    now: datetime,
    secure: bool,
    path: str,
    domain: str | None,
    http_only: bool,
    same_site: SameSite,
) -> str:
    """set_cookie as first written: a token name, cookie-octets elsewhere, the attributes joined in Express's order."""
    cookie_octets = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")
    if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
        msg = f"cookie name {name!r} is not a token"
        raise ValueError(msg)
    if not cookie_octets.fullmatch(value) or any(not cookie_octets.fullmatch(a or "") for a in (path, domain)):
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
        parts.append(f"Expires={format_datetime(expires_at.astimezone(UTC), usegmt=True)}")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


# Parts a header can carry (a name that is a token, cookie-octets elsewhere), and any text, which it may not.
tokens = st.text(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8
)
octets = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='",;\\'), max_size=12)
any_text = st.one_of(
    st.sampled_from(["", "a b", "a;b", 'a"b', "a,b", "a\\b", "é", "a\r\nb", "\x7f"]),
    st.text(st.characters(max_codepoint=130), max_size=10),
)


def write_both_ways(
    name: str,
    value: str,
    path: str,
    domain: str | None,
    expires_at: datetime | None,
    now: datetime,
    flags: tuple[bool, bool, SameSite],
) -> None:
    secure, http_only, same_site = flags
    options: dict[str, Any] = {
        "expires_at": expires_at,
        "now": now,
        "secure": secure,
        "path": path,
        "domain": domain,
        "http_only": http_only,
        "same_site": same_site,
    }
    try:
        expected = set_cookie_as_it_was_written(name, value, **options)
    except ValueError as refusal:
        with pytest.raises(ValueError, match=re.escape(str(refusal))):
            set_cookie(name, value, **options)
    else:
        assert set_cookie(name, value, **options) == expected


attribute_flags = st.tuples(st.booleans(), st.booleans(), st.sampled_from(["Lax", "Strict", "None"]))


@given(
    st.sampled_from(["sessionCookie", "sid"]) | tokens,
    octets,
    st.just("/") | octets,
    st.none() | st.just("127.0.0.1") | octets,
    st.none() | any_moments,
    any_moments,
    attribute_flags,
)
@example("sessionCookie", "v", "/", None, EPOCH, EPOCH, (False, True, "Lax"))
@example("sid", "v", "", "", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC), (True, False, "None"))
def test_a_set_cookie_header_is_written_as_before_for_any_parts_it_can_carry(
    name: str,
    value: str,
    path: str,
    domain: str | None,
    expires_at: datetime | None,
    now: datetime,
    flags: tuple[bool, bool, SameSite],
) -> None:
    write_both_ways(name, value, path, domain, expires_at, now, flags)


@given(
    st.sampled_from(["sessionCookie", "sid"]) | tokens | any_text,
    octets | any_text,
    st.just("/") | octets | any_text,
    st.none() | octets | any_text,
    st.none() | moments,
    moments,
    attribute_flags,
)
@example("session cookie", "v", "/", None, None, EPOCH, (False, True, "Lax"))
@example("sessionCookie", "a;b", "/", None, None, EPOCH, (False, True, "Lax"))
@example("sessionCookie", "v", "/;x", None, None, EPOCH, (False, True, "Lax"))
@example("sessionCookie", "v", "/", "a\r\nb", None, EPOCH, (False, True, "Lax"))
def test_a_set_cookie_header_is_refused_as_before_when_a_part_would_break_it(
    name: str,
    value: str,
    path: str,
    domain: str | None,
    expires_at: datetime | None,
    now: datetime,
    flags: tuple[bool, bool, SameSite],
) -> None:
    write_both_ways(name, value, path, domain, expires_at, now, flags)
