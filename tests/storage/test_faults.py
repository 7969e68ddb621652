"""Faults injected into the real databases (no mocks): a statement refused inside a SQLite group commit, a connection
lost mid-statement or from outside, a later statement of a multi-statement operation failing. Each caller gets a
committed success or an error, the error is a clean one, nothing half-written stays, nothing acknowledged is lost,
and the two databases answer each caller alike."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url

from sessiongate.core.models import NewSession, PageRequest, SessionCap, SessionQuery
from sessiongate.storage.outage import is_outage
from sessiongate.storage.runner import SqliteRunner
from tests.storage.conftest import TTL, Backend, committed_rows
from tests.storage.test_refresh_store import login, rotate, state
from tests.support.databases import PG_ENV

pytestmark = pytest.mark.anyio

FAULTS = ["refused", "connection-lost"]


def assert_clean(backend: Backend, error: BaseException | None, fault: str) -> None:
    """The error a caller hit by ``fault`` gets: the statement's refusal, or a lost connection (on PostgreSQL one that
    ``is_outage`` answers 503 for; on SQLite the interrupt that stands for it)."""
    assert error is not None, "the faulty operation was acknowledged"
    if fault == "refused":
        assert "refused" in str(error), repr(error)
    elif backend.kind == "postgresql":
        assert is_outage(error), repr(error)
    else:
        assert "interrupted" in str(error), repr(error)


def outcomes(results: list[Any]) -> list[str]:
    return ["failed" if isinstance(r, BaseException) else "ok" for r in results]


def batches_of(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the SQLite writer's group commits from now on (nothing on PostgreSQL, which has none)."""
    sizes: list[int] = []
    runner = backend.runner
    if isinstance(runner, SqliteRunner):
        run_batch = runner._run_batch

        def recording(batch: Any) -> Any:
            sizes.append(len(batch))
            return run_batch(batch)

        monkeypatch.setattr(runner, "_run_batch", recording)
    return sizes


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_write_hit_by_a_fault_inside_a_group_commit_fails_only_its_own_caller(backend, monkeypatch, fault):
    touched = await backend.insert(subject="touched", digest="touched")
    victim = await backend.insert(subject="victim")
    await backend.inject("sg_session", "INSERT", "NEW.subject = 'poison'", fault=fault)
    sizes = batches_of(backend, monkeypatch)
    now = backend.now

    results = await asyncio.gather(
        backend.insert(subject="ok-1", audit=backend.audit_row(principal_id="ok-1")),
        backend.insert(subject="poison", audit=backend.audit_row(principal_id="poison")),
        backend.insert(subject="ok-2", reuse_key="k", audit=backend.audit_row(principal_id="ok-2")),
        backend.sessions.touch(touched.id, now=now, expires_at=now + 2 * TTL),
        backend.sessions.revoke(victim.id, now=now),
        return_exceptions=True,
    )

    assert outcomes(results) == ["ok", "failed", "ok", "ok", "ok"]
    assert_clean(backend, results[1], fault)
    if backend.kind == "sqlite":
        assert sizes[0] == 5, sizes  # the fault struck inside one group commit of all five
    after = await backend.insert(subject="after", audit=backend.audit_row(principal_id="after"))
    assert after.subject == "after"  # the next operation is served
    assert (await backend.sessions.by_digest("touched"))[0].version == 2
    await backend.heal("sg_session")
    rows = await committed_rows(backend, "SELECT subject, version, revoked_at IS NULL FROM sg_session")
    expected = [("after", 1, True), ("ok-1", 1, True), ("ok-2", 1, True), ("touched", 2, True), ("victim", 2, False)]
    assert sorted(rows) == expected


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_creates_audit_event_hit_by_a_fault_takes_its_session_with_it_and_no_other(backend, monkeypatch, fault):
    await backend.inject("sg_audit_event", "INSERT", "NEW.principal_id = 'poison'", fault=fault)
    sizes = batches_of(backend, monkeypatch)

    results = await asyncio.gather(
        *(
            backend.insert(principal_id=who, audit=backend.audit_row(principal_id=who))
            for who in ("ok-1", "poison", "ok-2")
        ),
        return_exceptions=True,
    )

    assert outcomes(results) == ["ok", "failed", "ok"]
    assert_clean(backend, results[1], fault)
    if backend.kind == "sqlite":
        assert sizes[0] == 3, sizes
    await backend.heal("sg_audit_event")
    sessions = await committed_rows(backend, "SELECT principal_id FROM sg_session ORDER BY principal_id")
    assert sessions == [("ok-1",), ("ok-2",)]


@pytest.mark.parametrize("seen", [False, True], ids=["session read in the rotation", "session as the handler read it"])
@pytest.mark.parametrize("fault", ["duplicate successor", *FAULTS])
async def test_a_rotation_whose_successor_cannot_be_stored_leaves_nothing_half_written(backend, fault, seen):
    # With the handler's read (seen), the session is extended in one statement before the successor fails: that
    # extension must go with the rest.
    session = await login(backend)
    await login(backend, "taken")
    backend.clock.advance(5)
    before = await state(backend, session, "rt", "taken")
    successor = "taken"  # a real unique violation: the digest is another token's
    if fault != "duplicate successor":
        await backend.inject("sg_refresh_token", "INSERT", "NEW.digest = 'doomed'", fault=fault)
        successor = "doomed"

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await rotate(backend, "rt", successor=successor, session_id=session.id, seen=session if seen else None)

    assert "parameters hidden" in str(raised.value)  # a digest never reaches an error or a log
    if fault != "duplicate successor":
        assert_clean(backend, raised.value, fault)
    assert await state(backend, session, "rt", "taken") == before  # not claimed, not extended
    rotation, _ = await rotate(backend, "rt", successor="fine")
    assert rotation.outcome == "rotated"
    await backend.heal("sg_refresh_token")
    rows = await committed_rows(backend, "SELECT digest, rotated_at IS NULL FROM sg_refresh_token")
    assert sorted(rows) == [("fine", True), ("rt", False), ("taken", True)]


@pytest.mark.parametrize("fault", ["invalid event", *FAULTS])
async def test_a_reuse_whose_audit_events_cannot_be_stored_revokes_nothing(backend, fault):
    session = await login(backend)
    await rotate(backend, "rt", successor="rt-2")
    backend.clock.advance(60)
    before = await state(backend, session, "rt", "rt-2")
    events = [backend.audit_row("refresh.reuse_detected", session_id=session.id)]
    if fault == "invalid event":
        bad = [events[0] | {"kind": None}]
    else:
        await backend.inject("sg_audit_event", "INSERT", "NEW.kind = 'refresh.reuse_detected'", fault=fault)
        bad = events

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await rotate(backend, "rt", events=bad)

    if fault != "invalid event":
        assert_clean(backend, raised.value, fault)
        await backend.heal("sg_audit_event")
    assert await state(backend, session, "rt", "rt-2") == before  # a revoke is never stored without its events
    rotation, _ = await rotate(backend, "rt", events=events)
    assert (rotation.outcome, rotation.sessions_revoked) == ("reused", 1)
    assert await committed_rows(backend, "SELECT kind FROM sg_audit_event") == [("refresh.reuse_detected",)]


@pytest.mark.parametrize("fault", FAULTS)
async def test_an_insert_capped_whose_eviction_fails_creates_nothing_and_evicts_nothing(backend, fault):
    oldest = await backend.insert(principal_id="p", subject="doomed")
    backend.clock.advance(1)
    newer = await backend.insert(principal_id="p", subject="newer")
    backend.clock.advance(1)
    await backend.inject("sg_session", "UPDATE", "OLD.subject = 'doomed' AND NEW.revoked_at IS NOT NULL", fault=fault)
    new = NewSession(dialect="test", principal_id="p", subject="new")
    capped = {"expires_at": backend.now + TTL, "absolute_expires_at": None, "token_digest": None}

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await backend.sessions.insert_capped(new, now=backend.now, cap=SessionCap(most=2), **capped)

    assert_clean(backend, raised.value, fault)
    query = SessionQuery(principal_id="p", page=PageRequest(take=10))
    assert [s.id for s in (await backend.sessions.list(query, now=backend.now)).items] == [oldest.id, newer.id]
    assert [await backend.sessions.by_id(s.id) for s in (oldest, newer)] == [oldest, newer]
    await backend.heal("sg_session")
    made, reused, evicted = await backend.sessions.insert_capped(new, now=backend.now, cap=SessionCap(most=2), **capped)
    assert (reused, [s.id for s in evicted]) == (False, [oldest.id])
    rows = await committed_rows(backend, "SELECT subject, revoked_at IS NULL FROM sg_session")
    assert sorted(rows) == [("doomed", False), ("new", True), ("newer", True)]
    assert made.subject == "new"


async def terminate_backends(url: str) -> int:
    """Terminate, from a connection of its own, every server process connected to ``url``'s database."""
    admin = await asyncpg.connect(make_url(os.environ[PG_ENV]).set(drivername="postgresql").render_as_string(False))
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                make_url(url).database,
            )
        )
    finally:
        await admin.close()


async def test_postgresql_connections_terminated_from_outside_give_a_clean_error_or_the_right_answer(backend):
    if backend.kind != "postgresql":
        pytest.skip("SQLite has no server connection to terminate; its lost connection is the interrupt above")
    session = await login(backend)
    session = await backend.sessions.touch(session.id, now=backend.now, expires_at=backend.now + TTL)
    await backend.sessions.set_token_digest(session.id, "secret")
    await asyncio.gather(*(backend.sessions.by_id(session.id) for _ in range(4)))  # several pooled connections
    assert await terminate_backends(backend.url) >= 1

    async def answer(operation: Any) -> Any:
        """The operation's answer: at once, or after one clean error (the pool meeting the dead connections)."""
        try:
            return await operation()
        except Exception as exc:
            if not is_outage(exc):
                raise
            return await operation()

    assert await answer(lambda: backend.sessions.by_digest("secret")) == (session, "secret")
    assert await answer(lambda: backend.sessions.by_id(session.id)) == session
    page = await answer(lambda: backend.sessions.list(SessionQuery(), now=backend.now))
    assert [s.id for s in page.items] == [session.id]
    assert (await answer(lambda: backend.refresh.by_digest("rt"))).rotated_at is None
    await terminate_backends(backend.url)
    rotation, _ = await answer(lambda: rotate(backend, "rt"))
    assert rotation.outcome == "rotated"
    await terminate_backends(backend.url)
    ended = await answer(lambda: backend.sessions.revoke(session.id, now=backend.now))
    assert ended.revoked_at == backend.now
    rows = await committed_rows(backend, "SELECT digest, rotated_at IS NULL FROM sg_refresh_token")
    assert sorted(rows) == [("next", True), ("rt", False)]
