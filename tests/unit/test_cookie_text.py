"""The hand-written encoders behind every cookie and digest a validate writes, and the reader of the cookie it reads,
agree with the library functions they stand in for, on any input."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from litestar import Request

from sessiongate.dialects.cookies import encode_cookie_value, http_date, request_cookie
from sessiongate.tokens.opaque import Digester
from sessiongate_issp.mapping import iso

# Hypothesis bounds are naive; every moment drawn is aware, in UTC or seven hours behind it.
moments = st.datetimes(
    min_value=datetime(1970, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9999, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
)


@given(st.text())
def test_a_cookie_value_is_encoded_as_encode_uri_component_encodes_it(text: str) -> None:
    assert encode_cookie_value(text) == quote(text, safe="-_.!~*'()")


def test_every_ascii_character_but_the_unreserved_is_percent_encoded() -> None:
    text = "".join(chr(c) for c in range(128))
    assert encode_cookie_value(text) == quote(text, safe="-_.!~*'()")
    assert encode_cookie_value('j:{"a": 1}') == "j%3A%7B%22a%22%3A%201%7D"


@given(moments)
def test_a_cookie_expiry_is_the_http_date_the_email_module_writes(moment: datetime) -> None:
    assert http_date(moment) == format_datetime(moment.astimezone(UTC), usegmt=True)


@given(moments)
def test_issp_writes_javascripts_to_iso_string(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert iso(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


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
