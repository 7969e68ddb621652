"""The same operations on SQLite and on PostgreSQL give the same observable results, call by call."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from sessiongate.core.errors import SessionLimitReached
from sessiongate.core.models import Device, NewSession, PageRequest, SessionCap, SessionQuery, SortKey
from sessiongate.core.store import reuse_key_digest
from tests.storage.conftest import TTL, Backend, opened, start_of_time
from tests.storage.test_refresh_store import GRACE, login, rotate

pytestmark = pytest.mark.anyio


class Transcript:
    """What each call answered, with ids named by first appearance and instants as seconds from the start."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.names: dict[str, str] = {}
        self.lines: list[tuple[str, Any]] = []

    def note(self, call: str, answer: Any) -> None:
        self.lines.append((call, self.plain(msgspec.to_builtins(answer, builtin_types=(datetime,)))))

    def plain(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return (value - self.start).total_seconds()
        if isinstance(value, dict):
            return {k: self.plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.plain(v) for v in value]
        if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
            return self.names.setdefault(value, f"#{len(self.names) + 1}")
        return value


async def scenario(backend: Backend) -> list[tuple[str, Any]]:
    out = Transcript(backend.now)
    stores, clock = backend.sessions, backend.clock
    new = [
        await backend.insert(principal_id="p", device=Device(id=f"d{i % 2}"), subject=f"s{i}", digest=f"dg{i}")
        for i in range(4)
    ]
    for s in new:
        clock.advance(0.5)
        out.note("touch", await stores.touch(s.id, now=backend.now, expires_at=backend.now + TTL))
    keyed = NewSession(dialect="test", principal_id="p", reuse_key="k", attributes={"x": [1, "☃"]})
    args = {"now": backend.now, "expires_at": backend.now + TTL, "absolute_expires_at": None, "token_digest": None}
    out.note("insert keyed", await stores.insert(keyed, **args))
    out.note("insert keyed again", await stores.insert(keyed, **args))
    for cap in (SessionCap(most=5, action="refuse"), SessionCap(most=3)):
        try:
            answer = await stores.insert_capped(NewSession(dialect="test", principal_id="p"), cap=cap, **args)
        except SessionLimitReached as exc:
            answer = type(exc).__name__
        out.note(f"insert_capped {cap.action}", answer)
    out.note("count_live", await stores.count_live(NewSession(dialect="test", principal_id="p"), now=backend.now))
    clock.advance(1)
    out.note(
        "release",
        await stores.release_reuse_key(
            reuse_key_digest("k"), now=backend.now, principal_id="p", until=backend.now + timedelta(seconds=3)
        ),
    )
    out.note(
        "revoke_for_principal d1", await stores.revoke_for_principal("default", "p", now=backend.now, device_id="d1")
    )
    for sort in ((), (SortKey(field="subject", descending=True),), (SortKey(field="expires_at"),)):
        query = SessionQuery(principal_id="p", sort=sort, page=PageRequest(skip=1, take=3))
        out.note(f"list {sort}", await stores.list(query, now=backend.now))
    session = await login(backend, "rt", subject="refreshing")
    clock.advance(2)
    out.note("rotate", (await rotate(backend, "rt", successor="rt2"))[0])
    out.note("rotate raced", (await rotate(backend, "rt", successor="x"))[0])
    clock.advance(GRACE + 1)
    raced = await asyncio.gather(*(rotate(backend, "rt2", successor=f"rt3-{i}") for i in range(3)))
    out.note("concurrent rotations", sorted(r.outcome for r, _ in raced))
    out.note("rotate reused", (await rotate(backend, "rt", successor="y", events=[]))[0])
    out.note("token", await backend.refresh.by_digest("rt2"))
    out.note("session", await stores.by_id(session.id))
    clock.advance(TTL.total_seconds())
    out.note("delete_expired", await stores.delete_expired(now=backend.now, batch=3))
    out.note("delete_expired", await stores.delete_expired(now=backend.now, batch=100))
    out.note("delete_expired tokens", await backend.refresh.delete_expired(now=backend.now, batch=100))
    out.note("left", await stores.list(SessionQuery(page=PageRequest(take=100)), now=backend.now))
    return out.lines


async def test_the_same_operations_give_the_same_answers_on_sqlite_and_postgresql(both_urls):
    transcripts = {}
    for kind, url in both_urls.items():
        async with opened(kind, url, start_of_time()) as backend:
            transcripts[kind] = await scenario(backend)
    for lite, pg in zip(transcripts["sqlite"], transcripts["postgresql"], strict=True):
        assert lite == pg
