"""The key ring's check of its own tokens by bytes answers as PyJWT's full decode does, for any token at all."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiongate.core.errors import GatewayError
from sessiongate.tokens.jwt import KeyRing

KEY_A = "a" * 40
KEY_B = "b" * 40
SHORT = "s" * 8  # PyJWT warns about an HMAC key under 32 bytes
NOW = datetime(2026, 1, 1, tzinfo=UTC)
RING = KeyRing(
    {"a": KEY_A, "b": KEY_B, "short": SHORT, "é ☃": KEY_B},
    "a",
    5,
    retires={"b": NOW + timedelta(seconds=30)},
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
claim_names = st.sampled_from(["session", "sid", "aud", "sub", "jti", "iat", "exp", "nbf", "x"]) | st.text(max_size=6)
claims = st.dictionaries(claim_names, json_values, max_size=6)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "claims", call()
    except GatewayError as exc:
        return type(exc).__name__, str(exc)


def _pyjwt(token: str, now: datetime) -> tuple[str, Any]:
    return _outcome(lambda: RING._pyjwt_claims(token, now=now))


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """Tokens of the ring and near misses: other headers, keys, segments, paddings and payloads."""
    # Half the tokens are as the ring writes them (a known kid, iat and exp, JSON, the right key, intact); the rest
    # vary one thing or more.
    own = draw(st.booleans())
    kid = draw(st.sampled_from(["a", "b", "é ☃"] if own else ["a", "b", "short", "é ☃", "zzz"]))
    header: dict[str, Any] = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    header_text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    header_text = (
        header_text
        if own
        else draw(
            st.sampled_from(
                [
                    header_text,
                    json.dumps(header),  # spaces: another header, the same fields
                    json.dumps({**header, "crit": ["b64"], "b64": False}, separators=(",", ":")),
                    json.dumps({**header, "alg": "HS512"}, separators=(",", ":")),
                    json.dumps({"alg": "none", "kid": kid}, separators=(",", ":")),
                ]
            )
        )
    )
    payload = draw(claims)
    if own or draw(st.booleans()):
        payload |= {"iat": draw(st.integers(-(2**40), 2**40)), "exp": draw(st.integers(-(2**40), 2**40))}
    encodings = st.sampled_from([json.dumps(payload).encode(), json.dumps(payload, ensure_ascii=False).encode()])
    payload_bytes = draw(encodings if own else encodings | st.binary(max_size=20))
    head, body = _b64(header_text.encode()), _b64(payload_bytes)
    key = {"a": KEY_A, "b": KEY_B, "short": SHORT, "é ☃": KEY_B}.get(kid, KEY_A)
    if not own and draw(st.integers(0, 9)) == 0:
        key = KEY_B if key == KEY_A else KEY_A
    signature = _b64(jwt.api_jws.get_algorithm_by_name("HS256").sign(f"{head}.{body}".encode(), key.encode()))
    token = f"{head}.{body}.{signature}"
    mutation = draw(st.sampled_from([0, 0, 0, 5]) if own else st.integers(0, 6))
    if mutation == 1:
        token += "="
    elif mutation == 2:
        token = f"{head}.{body}=.{signature}"
    elif mutation == 3:
        at = draw(st.integers(0, len(token) - 1))
        token = token[:at] + draw(st.sampled_from("Aa-_.=+/é")) + token[at + 1 :]
    elif mutation == 4:
        token = f"{head}.{body}.x.{signature}"
    elif mutation == 5:  # a padded payload, signed as it is
        padded = f"{head}.{body}{draw(st.sampled_from(['=', '==', '===']))}"
        token = f"{padded}.{_b64(jwt.api_jws.get_algorithm_by_name('HS256').sign(padded.encode(), key.encode()))}"
    return token


@settings(max_examples=600, deadline=None)
@given(token=tokens(), seconds=st.sampled_from([0, 29, 30, 31]))
def test_a_token_the_ring_checks_by_bytes_gets_the_claims_pyjwt_gives(token: str, seconds: int):
    now = NOW + timedelta(seconds=seconds)
    own = RING._own_token_claims(token, now=now)
    if own is not None:
        assert _pyjwt(token, now) == ("claims", own)


@given(
    extra=st.dictionaries(st.sampled_from(["sid", "did", "identifier", "n"]), st.text() | st.integers(), max_size=4)
    | st.fixed_dictionaries({"sub": st.text(), "jti": st.text(), "aud": st.sampled_from(["", [], None])})
)
def test_every_token_the_ring_signs_is_checked_by_bytes(extra: dict[str, Any]):
    token = RING.encode(extra, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    assert RING._own_token_claims(token, now=NOW) == {
        **extra,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }


@pytest.mark.parametrize(
    ("why", "kid", "key", "payload"),
    [
        ("a key PyJWT warns about", "short", SHORT, {"iat": 0, "exp": 2**40}),
        ("an audience PyJWT refuses", "a", KEY_A, {"iat": 0, "exp": 2**40, "aud": ["x"]}),
        ("a subject PyJWT refuses", "a", KEY_A, {"iat": 0, "exp": 2**40, "sub": 5}),
        ("a token id PyJWT refuses", "a", KEY_A, {"iat": 0, "exp": 2**40, "jti": None}),
        ("no iat", "a", KEY_A, {"exp": 2**40}),
        ("another key", "a", KEY_B, {"iat": 0, "exp": 2**40}),
    ],
)
def test_a_token_outside_what_the_ring_writes_goes_to_pyjwt(why: str, kid: str, key: str, payload: dict[str, Any]):
    head = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload).encode())
    signature = _b64(jwt.api_jws.get_algorithm_by_name("HS256").sign(f"{head}.{body}".encode(), key.encode()))
    assert RING._own_token_claims(f"{head}.{body}.{signature}", now=NOW) is None, why


def test_a_key_past_its_retirement_is_not_taken_by_bytes():
    token = KeyRing({"b": KEY_B}, "b", 5).encode({}, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    assert RING._own_token_claims(token, now=NOW + timedelta(seconds=29)) is not None
    assert RING._own_token_claims(token, now=NOW + timedelta(seconds=30)) is None
