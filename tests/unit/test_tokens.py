from __future__ import annotations

import logging
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


def test_a_secret_digested_again_is_digested_under_the_key_current_then():
    digester = Digester(b"k1")
    secret = new_secret()
    assert digester.digest(secret) == Digester(b"k1").digest(secret)
    digester.replace(b"k2", older=[b"k1"])
    assert digester.digest(secret) == Digester(b"k2").digest(secret)  # the same string object, after a rotation


def test_the_digest_of_a_secret_does_not_depend_on_what_was_digested_before():
    digester, fresh = Digester(b"k1"), Digester(b"k1")
    first, second = new_secret(), new_secret()
    same_text = "".join(list(second))  # equal to ``second``, another object
    for secret in (first, second, same_text, first, second):
        assert digester.digest(secret) == fresh.digest(secret)
    assert digester.matches(same_text, fresh.digest(second))
    assert not digester.matches(first, fresh.digest(second))


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


def test_a_key_past_its_retirement_time_no_longer_verifies():
    retiring = KeyRing({"a": KEY_A, "b": KEY_B}, "b", 5, retires={"a": NOW + timedelta(seconds=10)})
    token = ring(active="a").encode({"s": 1}, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    assert retiring.decode(token, now=NOW + timedelta(seconds=9))["s"] == 1
    with pytest.raises(Unauthenticated):
        retiring.decode(token, now=NOW + timedelta(seconds=10))


@pytest.mark.anyio
async def test_a_token_naming_a_kid_the_ring_lacks_is_verified_once_the_ring_is_read_again():
    reads: list[int] = []
    lacking = KeyRing({"a": KEY_A}, "a", 5)

    async def read_again() -> None:
        reads.append(1)
        lacking.replace({"a": KEY_A, "b": KEY_B}, "a")

    lacking.reload = read_again
    token = ring(active="b").encode({"s": 1}, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    with pytest.raises(Unauthenticated):
        lacking.decode(token, now=NOW)
    assert (await lacking.verify(token, now=NOW))["s"] == 1
    assert (await lacking.verify(token, now=NOW))["s"] == 1
    assert len(reads) == 1  # known since: no second read


@pytest.mark.anyio
async def test_a_kid_still_unknown_after_reading_the_ring_again_is_refused():
    lacking = KeyRing({"a": KEY_A}, "a", 5)

    async def read_again() -> None:
        lacking.replace({"a": KEY_A}, "a")

    lacking.reload = read_again
    token = jwt.encode({"exp": 2**40, "iat": 0}, KEY_B, algorithm="HS256", headers={"kid": "zzz"})
    with pytest.raises(Unauthenticated):
        await lacking.verify(token, now=NOW)


class Stored:
    """Rows by digest, as a table would hold them, and what was asked of it."""

    def __init__(self, rows: dict[str, str]) -> None:
        self.rows = rows
        self.asked: list[str] = []
        self.moved: list[tuple[str, str]] = []

    async def lookup(self, digest: str) -> str | None:
        self.asked.append(digest)
        return self.rows.get(digest)

    async def rekey(self, old: str, new: str) -> None:
        self.moved.append((old, new))
        self.rows[new] = self.rows.pop(old)


@pytest.mark.anyio
async def test_a_secret_digested_under_the_current_key_costs_one_lookup_whatever_else_the_ring_holds():
    ring_ = Digester(b"k2", older=[b"k1"], newer=[b"k3"])
    secret = new_secret()
    table = Stored({ring_.digest(secret): "row"})
    assert await ring_.find(secret, table.lookup, table.rekey) == "row"
    assert table.asked == [ring_.digest(secret)]
    assert table.moved == []


@pytest.mark.anyio
async def test_a_secret_digested_under_an_older_key_is_found_and_digested_again_under_the_current_one():
    before, after = Digester(b"k1"), Digester(b"k2", older=[b"k1"])
    secret = new_secret()
    table = Stored({before.digest(secret): "row"})
    assert await after.find(secret, table.lookup, table.rekey) == "row"
    assert table.moved == [(before.digest(secret), after.digest(secret))]
    assert after.matches(secret, before.digest(secret))
    table.asked.clear()
    assert await after.find(secret, table.lookup, table.rekey) == "row"
    assert table.asked == [after.digest(secret)]  # moved: one lookup again


@pytest.mark.anyio
async def test_a_secret_found_under_a_key_not_yet_current_here_is_left_where_it_is():
    here, elsewhere = Digester(b"k1", newer=[b"k2"]), Digester(b"k2", older=[b"k1"])
    secret = new_secret()
    table = Stored({elsewhere.digest(secret): "row"})
    assert await here.find(secret, table.lookup, table.rekey) == "row"
    assert table.moved == []  # another process digests under k2 already; moving it back would make them take turns


@pytest.mark.anyio
async def test_a_secret_is_found_under_an_older_key_even_when_digesting_it_again_fails():
    before, after = Digester(b"k1"), Digester(b"k2", older=[b"k1"])
    secret = new_secret()
    table = Stored({before.digest(secret): "row"})

    async def fails(old: str, new: str) -> None:
        raise RuntimeError("the database said no")

    said: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = said.append  # type: ignore[method-assign]
    logging.getLogger("sessiongate.keys").addHandler(handler)
    try:
        assert await after.find(secret, table.lookup, fails) == "row"
    finally:
        logging.getLogger("sessiongate.keys").removeHandler(handler)
    assert [record.levelname for record in said] == ["WARNING"]
    assert not any(secret in record.getMessage() for record in said)


@pytest.mark.anyio
async def test_an_unknown_secret_is_looked_up_under_every_key_of_the_ring_and_not_found():
    ring_ = Digester(b"k2", older=[b"k1"], newer=[b"k3"])
    table = Stored({})
    assert await ring_.find(new_secret(), table.lookup, table.rekey) is None
    assert len(set(table.asked)) == 3
    assert not Digester(b"k2").matches("guess", Digester(b"k1").digest("guess"))


@pytest.mark.anyio
async def test_a_token_naming_a_retired_key_is_refused_without_reading_the_ring_again():
    reads: list[int] = []

    async def read_again() -> None:
        reads.append(1)

    retired = KeyRing({"a": KEY_A}, "a", 5, retired={"b"}, reload=read_again)
    token = ring(active="b").encode({"s": 1}, issued_at=NOW, expires_at=NOW + timedelta(minutes=5))
    with pytest.raises(Unauthenticated):
        await retired.verify(token, now=NOW)
    assert reads == []
