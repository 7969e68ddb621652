"""Every clause of ``RefreshStore``'s contract (``sessiongate.core.store``), on each database alike: what each outcome
of a rotation returns, changes and leaves alone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

import msgspec
import pytest
from sqlalchemy import Table, update

from sessiongate.core.models import Session
from sessiongate.core.store import StoredRefreshToken
from sessiongate.storage.driver_query import driver_query
from sessiongate.storage.refresh_store import _BY_DIGEST, SqlRefreshStore
from sessiongate.storage.tables import SessionRecord
from tests.storage.conftest import TTL, Backend, ThroughSqlAlchemy

pytestmark = pytest.mark.anyio

GRACE = 10.0
S = cast("Table", SessionRecord.__table__)


async def login(backend: Backend, token: str = "rt", *, ttl: timedelta = TTL, **fields) -> Session:
    session = await backend.insert(ttl=ttl, **fields)
    await backend.refresh.issue(session.id, digest=token, now=backend.now, expires_at=session.expires_at)
    return session


async def rotate(
    backend: Backend, *digests: str, successor: str = "next", session_id=None, expiry="extend", events=None, seen=None
):
    """``rotate`` as the service calls it: the session extended by an hour (or by ``expiry`` when it is a function of
    the session), the reuse's rows made by ``events``."""
    extend = (lambda s: backend.now + TTL) if expiry == "extend" else expiry
    made: list[tuple[str, Session | None]] = []

    def reuse_events(sid: str, session: Session | None) -> list[dict]:
        made.append((sid, session))
        return [backend.audit_row("refresh.reuse_detected", session_id=sid)] if events is None else events

    rotation = await backend.refresh.rotate(
        list(digests),
        successor=successor,
        now=backend.now,
        grace=GRACE,
        expiry=extend,
        session_id=session_id,
        reuse_events=reuse_events,
        seen=seen,
    )
    return rotation, made


async def state(backend: Backend, session: Session, *tokens: str) -> tuple:
    """Everything a rotation could change: the session, and the tokens stored."""
    return (
        await backend.sessions.by_id(session.id),
        [await backend.refresh.by_digest(t) for t in tokens],
        await backend.rows("SELECT count(*) FROM sg_refresh_token"),
        await backend.rows("SELECT count(*) FROM sg_audit_event"),
    )


async def test_an_issued_token_is_stored_as_issued_and_an_unknown_one_is_not_found(backend):
    session = await login(backend)
    assert await backend.refresh.by_digest("rt") == StoredRefreshToken(
        session_id=session.id,
        digest="rt",
        created_at=backend.now,
        expires_at=session.expires_at,
        rotated_at=None,
        revoked_at=None,
    )
    assert await backend.refresh.by_digest("never") is None


async def test_a_lookup_on_the_driver_returns_what_the_core_query_does(backend):
    # by_digest runs precompiled SQL on the driver's connection, converting the row with SQLAlchemy's own type
    # processors: each state of a token must come out as SQLAlchemy's execution of the query makes it.
    session = await login(backend)
    await rotate(backend, "rt")
    await backend.refresh.issue(session.id, digest="later", now=backend.now, expires_at=session.expires_at)
    driver = backend.refresh
    assert driver_query(_BY_DIGEST, backend.runner) is not None
    core = SqlRefreshStore(ThroughSqlAlchemy(backend.runner))
    for digest in ("rt", "next", "later", "never"):
        assert await driver.by_digest(digest) == await core.by_digest(digest)
    assert (await driver.by_digest("rt")).rotated_at == backend.now


async def test_a_rotation_claims_the_token_extends_its_session_and_stores_the_successor_to_expire_with_it(backend):
    session = await login(backend)
    backend.clock.advance(100.25)
    rotation, made = await rotate(backend, "under-a-newer-key", "rt", session_id=session.id)
    extended = msgspec.structs.replace(session, expires_at=backend.now + TTL, last_seen_at=backend.now, version=2)
    assert rotation == msgspec.structs.replace(rotation, outcome="rotated", session=extended, session_id=session.id)
    assert (rotation.sessions_revoked, rotation.events, made) == (0, [], [])
    assert await backend.sessions.by_id(session.id) == extended
    claimed = await backend.refresh.by_digest("rt")
    assert (claimed.rotated_at, claimed.revoked_at, claimed.expires_at) == (backend.now, None, session.expires_at)
    assert await backend.refresh.by_digest("next") == StoredRefreshToken(
        session_id=session.id,
        digest="next",
        created_at=backend.now,
        expires_at=extended.expires_at,
        rotated_at=None,
        revoked_at=None,
    )


async def test_a_rotation_without_an_expiry_claims_and_succeeds_but_leaves_the_session_as_it_was(backend):
    session = await login(backend)
    backend.clock.advance(5)
    rotation, _ = await rotate(backend, "rt", expiry=None)
    assert (rotation.outcome, rotation.session) == ("rotated", session)
    assert await backend.sessions.by_id(session.id) == session
    assert (await backend.refresh.by_digest("next")).expires_at == session.expires_at


async def test_a_rotation_given_its_session_as_just_read_extends_it_as_a_rotation_that_reads_it_does(backend):
    read = await login(backend)
    other = await login(backend, "other-rt")
    backend.clock.advance(100.25)
    rotation, _ = await rotate(backend, "rt", session_id=read.id, seen=read)
    extended = msgspec.structs.replace(read, expires_at=backend.now + TTL, last_seen_at=backend.now, version=2)
    assert (rotation.outcome, rotation.session) == ("rotated", extended)
    assert await backend.sessions.by_id(read.id) == extended
    assert (await backend.refresh.by_digest("next")).expires_at == extended.expires_at
    assert await backend.sessions.by_id(other.id) == other


@pytest.mark.parametrize("hint", ["an older version of it", "another session"])
async def test_a_rotation_given_a_stale_or_wrong_read_extends_the_session_as_stored_never_as_read(backend, hint):
    # The new expiry is a function of the session: computed from a read the store no longer holds, it would undo
    # what changed since. A hint that is not the stored row's version is read again, never trusted.
    read = await login(backend)
    other = await login(backend, "other-rt")
    later = read.expires_at + timedelta(minutes=7)
    await backend.runner.write(update(S).where(S.c.id == uuid.UUID(read.id)).values(expires_at=later))
    await backend.runner.write(update(S).values(version=S.c.version + 1))
    stored = await backend.sessions.by_id(read.id)
    assert (stored.expires_at, stored.version) == (later, 2)
    backend.clock.advance(5)
    seen = read if hint == "an older version of it" else msgspec.structs.replace(other, version=2)
    rotation, _ = await rotate(
        backend, "rt", expiry=lambda s: s.expires_at + timedelta(seconds=30), session_id=read.id, seen=seen
    )
    grown = msgspec.structs.replace(
        stored, expires_at=later + timedelta(seconds=30), last_seen_at=backend.now, version=3
    )
    assert (rotation.outcome, rotation.session) == ("rotated", grown)
    assert await backend.sessions.by_id(read.id) == grown


@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("never issued", "unknown"),
        ("another session's", "unknown"),
        ("expired to the microsecond", "expired"),
        ("rotated exactly the grace ago", "raced"),
        ("of a revoked family", "revoked"),
    ],
)
async def test_a_rotation_that_rotates_nothing_changes_nothing(backend, case, outcome):
    session = await login(backend, ttl=timedelta(seconds=60))
    other = await login(backend, "other-rt")
    session_id = None
    presented = "rt"
    if case == "never issued":
        presented = "never"
    elif case == "another session's":
        session_id = other.id
    elif case == "expired to the microsecond":
        backend.clock.advance(60)
    elif case == "rotated exactly the grace ago":
        await rotate(backend, "rt", successor="first-next")
        backend.clock.advance(GRACE)
    else:
        await rotate(backend, "rt", successor="first-next")
        backend.clock.advance(GRACE + 1)
        assert (await rotate(backend, "rt", successor="unused"))[0].outcome == "reused"
        presented = "first-next"
    session = await backend.sessions.by_id(session.id)
    before = await state(backend, session, "rt", "first-next", "other-rt")

    rotation, made = await rotate(backend, presented, session_id=session_id)

    assert rotation.outcome == outcome
    assert (rotation.session, rotation.sessions_revoked, rotation.events, made) == (None, 0, [], [])
    assert rotation.session_id == (session.id if outcome == "raced" else None)
    assert await state(backend, session, "rt", "first-next", "other-rt") == before
    assert await backend.refresh.by_digest("next") is None


async def test_a_rotated_token_presented_after_the_grace_revokes_its_family_and_session_with_its_events(backend):
    session = await login(backend)
    await backend.refresh.issue(session.id, digest="own-family", now=backend.now, expires_at=session.expires_at)
    bystander = await login(backend, "bystander")
    await rotate(backend, "rt", successor="rt-2")
    backend.clock.advance(1)
    await rotate(backend, "rt-2", successor="rt-3")
    backend.clock.advance(GRACE + 0.5)
    events = [backend.audit_row("refresh.reuse_detected", session_id=session.id)]

    rotation, made = await rotate(backend, "rt", successor="unused", events=events)

    ended = await backend.sessions.by_id(session.id)
    assert (ended.revoked_at, rotation.outcome, rotation.session_id) == (backend.now, "reused", session.id)
    assert (rotation.sessions_revoked, made) == (1, [(session.id, ended)])
    assert rotation.events == events
    assert await backend.rows("SELECT kind, session_id FROM sg_audit_event") == [("refresh.reuse_detected", session.id)]
    family = [await backend.refresh.by_digest(t) for t in ("rt", "rt-2", "rt-3")]
    assert [t.revoked_at for t in family] == [backend.now] * 3
    assert (await backend.refresh.by_digest("own-family")).revoked_at is None  # another family of the session
    assert await backend.refresh.by_digest("unused") is None
    assert (await backend.refresh.by_digest("bystander")).revoked_at is None
    assert await backend.sessions.by_id(bystander.id) == bystander


@pytest.mark.parametrize("ending", ["revoked", "deleted"])
async def test_a_reuse_after_the_session_ended_revokes_the_family_revokes_no_session_and_names_it_as_stored(
    backend, ending
):
    session = await login(backend)
    await rotate(backend, "rt", successor="rt-2")
    ended = await backend.sessions.revoke(session.id, now=backend.now)
    if ending == "deleted":
        assert await backend.sessions.delete_expired(now=backend.now + timedelta(seconds=1), batch=10) == 1
    backend.clock.advance(GRACE + 1)
    rotation, made = await rotate(backend, "rt")
    assert (rotation.outcome, rotation.sessions_revoked) == ("reused", 0)
    assert made == [(session.id, ended if ending == "revoked" else None)]
    assert (await backend.refresh.by_digest("rt-2")).revoked_at == backend.now


@pytest.mark.parametrize("ending", ["revoked", "shortened", "deleted"])
async def test_a_live_token_of_an_ended_session_is_session_gone_every_time_and_never_taken_for_a_reuse(backend, ending):
    # Contract: any outcome but "rotated" rotates nothing. A session_gone that kept its claim left the token
    # rotated, so the same token presented after the grace window was taken for a stolen copy ("reused": theft
    # detection revoking its family and recording a theft that never happened).
    session = await login(backend)
    if ending == "revoked":
        await backend.sessions.revoke(session.id, now=backend.now)
    elif ending == "shortened":
        await backend.sessions.touch(session.id, now=backend.now, expires_at=backend.now + timedelta(seconds=1))
        backend.clock.advance(1)
    else:
        await backend.sessions.revoke(session.id, now=backend.now)
        await backend.sessions.delete_expired(now=backend.now + timedelta(seconds=1), batch=10)
    before = await state(backend, session, "rt")

    first, _ = await rotate(backend, "rt")
    assert first == msgspec.structs.replace(first, outcome="session_gone", session=None, sessions_revoked=0, events=[])
    assert await state(backend, session, "rt") == before
    assert await backend.refresh.by_digest("next") is None

    backend.clock.advance(GRACE + 1)
    again, made = await rotate(backend, "rt", successor="next-again")
    assert (again.outcome, made) == ("session_gone", [])
    assert await backend.rows("SELECT count(*) FROM sg_audit_event") == [(0,)]
    assert (await backend.refresh.by_digest("rt")).revoked_at is None


async def test_delete_expired_takes_tokens_expired_by_now_inclusive_oldest_first_up_to_the_batch(backend):
    for n, seconds in enumerate((30, 10, 20, 40)):
        await backend.refresh.issue(
            f"0190d0a0-0000-7000-8000-00000000000{n}",
            digest=f"t{seconds}",
            now=backend.now,
            expires_at=backend.now + timedelta(seconds=seconds),
        )
    backend.clock.advance(30)
    assert await backend.refresh.delete_expired(now=backend.now, batch=2) == 2
    assert [await backend.refresh.by_digest(t) is None for t in ("t10", "t20", "t30", "t40")] == [
        True,
        True,
        False,
        False,
    ]
    assert await backend.refresh.delete_expired(now=backend.now, batch=2) == 1
    assert await backend.refresh.delete_expired(now=backend.now, batch=2) == 0
    assert await backend.refresh.by_digest("t40") is not None
