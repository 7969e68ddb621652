"""Every clause of ``AuditStore``'s contract (``sessiongate.core.audit_store``), on each database alike: rows made
as the other stores write them, events listed exactly as recorded, keyset pages newest first, filters, and the
retention sweep."""

from __future__ import annotations

import uuid

import pytest

from sessiongate.core.audit_store import AuditEvent, AuditFilter, AuditStore, NewEvent
from sessiongate.core.keyset import decode_cursor
from sessiongate.storage.audit_store import SqlAuditStore
from sessiongate.storage.audit_table import LIMITS
from tests.storage.conftest import Backend

pytestmark = pytest.mark.anyio

FULL = NewEvent(
    kind="session.revoked",
    actor="admin-token:ops",
    tenant="t",
    dialect="zelf",
    principal_id="p-1",
    session_id="s-1",
    client_address="10.0.0.1",
    user_agent="curl/8 ☃",
    detail={"count": 2, "reason": "ended ü", "forced": True, "none": None},
)


@pytest.fixture
def store(backend: Backend) -> AuditStore:
    return SqlAuditStore(backend.runner)


async def record(store: AuditStore, backend: Backend, event: NewEvent = FULL, *, step: float = 1.0) -> AuditEvent:
    """Write ``event`` as happening now, then move the clock on by ``step`` seconds; the event, as the row holds it."""
    row = store.row(event, now=backend.now)
    await store.insert(row)
    backend.clock.advance(step)
    return store.event(row)


async def everything(store: AuditStore, where: AuditFilter | None = None) -> list[AuditEvent]:
    return (await store.list(where or AuditFilter(), limit=1000)).items


# row, event, insert


async def test_a_row_names_the_event_and_its_moment_with_a_new_time_ordered_id_and_writes_nothing(store, backend):
    rows = [store.row(FULL, now=backend.now) for _ in range(3)]
    ids = [uuid.UUID(str(row["id"])) for row in rows]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(set(ids))
    assert store.event(rows[0]) == AuditEvent(
        id=str(ids[0]),
        at=backend.now,
        kind="session.revoked",
        actor="admin-token:ops",
        tenant="t",
        dialect="zelf",
        principal_id="p-1",
        session_id="s-1",
        client_address="10.0.0.1",
        user_agent="curl/8 ☃",
        detail={"count": 2, "reason": "ended ü", "forced": True, "none": None},
    )
    assert await backend.rows("SELECT count(*) FROM sg_audit_event") == [(0,)]


async def test_an_inserted_event_is_committed_and_listed_exactly_as_its_row_said_every_microsecond_kept(store, backend):
    assert backend.now.microsecond == 654_321
    recorded = await record(store, backend)
    assert await backend.rows("SELECT kind, session_id FROM sg_audit_event") == [("session.revoked", "s-1")]
    assert await everything(store) == [recorded]


async def test_text_too_long_for_its_column_or_holding_a_nul_is_cut_and_cleaned_never_refused(store, backend):
    long = NewEvent(
        kind="login.failed",
        actor="a" * 1000,
        user_agent="\x00" + "é" * 1000,
        tenant="t\x00",
        detail={"login": "x" * 1000, "nul": "a\x00b", "n": 7},
    )
    recorded = await record(store, backend, long)
    assert recorded.actor == "a" * LIMITS["actor"]
    assert recorded.user_agent == "\ufffd" + "é" * (LIMITS["user_agent"] - 1)
    assert recorded.tenant == "t\ufffd"
    assert recorded.detail == {"login": "x" * 256, "nul": "a\ufffdb", "n": 7}
    assert await everything(store) == [recorded]


async def test_a_row_written_by_the_session_store_with_its_session_is_listed_as_the_row_says(store, backend):
    row = store.row(NewEvent(kind="session.created", actor="user", tenant="default"), now=backend.now)
    session = await backend.insert(audit=row)
    (listed,) = await everything(store)
    assert listed == store.event(row | {"session_id": session.id})


# list


async def test_a_listing_is_newest_first_in_keyset_pages_that_end_with_no_cursor(store, backend):
    recorded = [await record(store, backend, NewEvent(kind="login.succeeded", actor=f"a{n}")) for n in range(5)]
    newest_first = recorded[::-1]
    first = await store.list(AuditFilter(), limit=2)
    assert first.items == newest_first[:2]
    assert first.next_cursor is not None
    second = await store.list(AuditFilter(), limit=2, after=decode_cursor(first.next_cursor))
    assert second.items == newest_first[2:4]
    assert second.next_cursor is not None
    last = await store.list(AuditFilter(), limit=2, after=decode_cursor(second.next_cursor))
    assert (last.items, last.next_cursor) == (newest_first[4:], None)
    exact = await store.list(AuditFilter(), limit=5)
    assert (exact.items, exact.next_cursor) == (newest_first, None)


async def test_a_page_is_stable_while_events_are_added_after_it_began(store, backend):
    recorded = [await record(store, backend) for _ in range(3)]
    first = await store.list(AuditFilter(), limit=1)
    assert first.next_cursor is not None
    await record(store, backend)  # newer than every page being read
    rest = await store.list(AuditFilter(), limit=10, after=decode_cursor(first.next_cursor))
    assert rest.items == recorded[:2][::-1]


@pytest.mark.parametrize(
    "field", ["kind", "actor", "tenant", "dialect", "principal_id", "session_id"], ids=lambda field: field
)
async def test_each_field_filter_keeps_only_the_events_equal_to_it(store, backend, field):
    other = {"kind": "login.failed", "actor": "cli"} | dict.fromkeys(("tenant", "dialect", "principal_id"), "other")
    other["session_id"] = "other"
    wanted = await record(store, backend)
    await record(store, backend, NewEvent(**{"kind": FULL.kind, "actor": FULL.actor} | {field: other[field]}))
    await record(store, backend, NewEvent(kind="login.failed", actor="cli"))  # the optional ones unknown
    assert await everything(store, AuditFilter(**{field: getattr(FULL, field)})) == [wanted]


async def test_a_time_range_holds_its_start_and_not_its_end_and_filters_combine(store, backend):
    earlier = await record(store, backend, step=10)
    at_start = await record(store, backend, step=0)
    also_at_start = await record(store, backend, NewEvent(kind="login.failed", actor="cli"), step=10)
    at_end = await record(store, backend)
    start, end = at_start.at, at_end.at
    assert await everything(store, AuditFilter(after=start, before=end)) == [also_at_start, at_start]
    assert await everything(store, AuditFilter(before=start)) == [earlier]
    assert await everything(store, AuditFilter(after=start)) == [at_end, also_at_start, at_start]
    assert await everything(store, AuditFilter(after=start, kind="login.failed")) == [also_at_start]


# delete_before


async def test_delete_before_deletes_only_older_events_the_oldest_first_up_to_the_batch(store, backend):
    recorded = [await record(store, backend) for _ in range(5)]
    cutoff = recorded[3].at  # the event at the cutoff itself stays
    assert await store.delete_before(cutoff, batch=2) == 2
    assert await everything(store) == recorded[2:][::-1]
    assert await store.delete_before(cutoff, batch=10) == 1
    assert await store.delete_before(cutoff, batch=10) == 0
    assert await everything(store) == recorded[3:][::-1]
