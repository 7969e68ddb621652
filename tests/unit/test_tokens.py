from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from sessiongate.core.errors import SessionExpired, Unauthenticated
from sessiongate.tokens.jwt import KeyRing
from sessiongate.tokens.opaque import Digester, new_secret

KEY_A = "a" * 40
KEY_B = "b" * 40
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ring(active: str = "a", leeway: int = 5) -> KeyRing:
    return KeyRing({"a": KEY_A, "b": KEY_B}, active, leeway)


def test_new_secrets_are_long_and_distinct():
    secrets = {new_secret() for _ in range(1000)}
    assert len(secrets) == 1000
    assert all(len(s) >= 43 for s in secrets)


def test_digest_is_keyed_and_hides_the_secret():
    secret = new_secret()
    digest = Digester(b"k1").digest(secret)
    assert len(digest) == 64
    assert secret not in digest
    assert digest != Digester(b"k2").digest(secret)


def test_matches_accepts_only_the_same_secret():
    digester = Digester(b"k1")
    secret = new_secret()
    assert digester.matches(secret, digester.digest(secret))
    assert not digester.matches(secret + "x", digester.digest(secret))


def test_jwt_carries_kid_iat_and_exp():
    token = ring().encode({"session": "s1"}, issued_at=NOW, expires_at=NOW + timedelta(seconds=600))
    assert jwt.get_unverified_header(token)["kid"] == "a"
    claims = ring().decode(token, now=NOW)
    assert claims == {"session": "s1", "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 600}


def test_jwt_is_the_token_pyjwt_would_sign():
    claims = {"session": "01a2299d-8194-75fa-ba3c-3932d6977c91", "identifier": "device-7"}
    expires = NOW + timedelta(seconds=600)
    token = ring().encode(claims, issued_at=NOW, expires_at=expires)
    payload = {**claims, "iat": int(NOW.timestamp()), "exp": int(expires.timestamp())}
    assert token == jwt.encode(payload, KEY_A, algorithm="HS256", headers={"kid": "a"})
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "a", "typ": "JWT"}


def test_jwt_with_non_ascii_claims_verifies_under_pyjwt():
    claims = {"session": "s1", "identifier": "dévice ☃"}
    token = ring().encode(claims, issued_at=NOW, expires_at=NOW + timedelta(seconds=600))
    decoded = jwt.decode(token, KEY_A, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded["identifier"] == "dévice ☃"
    assert ring().decode(token, now=NOW)["identifier"] == "dévice ☃"


def test_tokens_signed_with_a_retired_key_still_verify_after_rotation():
    old = ring(active="a").encode({"s": 1}, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    assert ring(active="b").decode(old, now=NOW)["s"] == 1


def test_unknown_kid_is_rejected():
    token = jwt.encode({"exp": 2**40, "iat": 0}, KEY_A, algorithm="HS256", headers={"kid": "zzz"})
    with pytest.raises(Unauthenticated):
        ring().decode(token, now=NOW)


def test_alg_none_is_rejected():
    token = jwt.encode({"exp": 2**40, "iat": 0}, None, algorithm="none", headers={"kid": "a"})
    with pytest.raises(Unauthenticated):
        ring().decode(token, now=NOW)


def test_token_without_exp_is_rejected():
    token = jwt.encode({"iat": 0}, KEY_A, algorithm="HS256", headers={"kid": "a"})
    with pytest.raises(Unauthenticated):
        ring().decode(token, now=NOW)


def test_tampered_token_is_rejected():
    token = ring().encode({"session": "s1"}, issued_at=NOW, expires_at=NOW + timedelta(seconds=60))
    head, body, sig = token.split(".")
    with pytest.raises(Unauthenticated):
        ring().decode(f"{head}.{body}.{sig[:-2]}AA", now=NOW)


def test_expired_token_is_rejected_after_the_leeway_only():
    token = ring(leeway=5).encode({}, issued_at=NOW, expires_at=NOW + timedelta(seconds=60))
    assert ring(leeway=5).decode(token, now=NOW + timedelta(seconds=64)) is not None
    with pytest.raises(SessionExpired):
        ring(leeway=5).decode(token, now=NOW + timedelta(seconds=65))


def test_garbage_is_rejected_as_unauthenticated():
    with pytest.raises(Unauthenticated):
        ring().decode("not-a-jwt", now=NOW)
