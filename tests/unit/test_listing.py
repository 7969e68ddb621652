from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from sessiongate.core.models import (
    Device,
    ExpiryPolicy,
    NewSession,
    PageRequest,
    SessionFilter,
    SessionQuery,
    SortKey,
)
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from tests.support.plans import explain

pytestmark = pytest.mark.anyio

POLICY = ExpiryPolicy(ttl=3600)


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=True) as built:
        yield built


async def add(services, clock, step=1.0, **kw):
    clock.advance(step)
    kw.setdefault("dialect", "test")
    return (await services.sessions.create(NewSession(**kw), POLICY)).session


async def listing(services, **kw):
    return await services.sessions.list(SessionQuery(**kw))


def ids(page):
    return [s.id for s in page.items]


@pytest.fixture
async def twelve(services, clock):
    made = []
    for i in range(12):
        device = Device(name=f"dev-{i % 4}" if i % 3 else None, id=f"id-{i}", env="PDA" if i % 2 else None)
        made.append(await add(services, clock, subject=None if i == 5 else f"user-{i % 5}", device=device))
    return made


async def test_default_order_is_creation_then_id_and_pages_neither_overlap_nor_skip(services, twelve):
    seen = []
    for skip in range(0, 12, 5):
        seen += ids(await listing(services, page=PageRequest(skip=skip, take=5)))
    assert seen == [s.id for s in twelve]


async def test_pages_near_the_end_read_backwards_but_come_out_in_order(services, twelve):
    for skip, take in [(7, 5), (9, 5), (11, 1), (6, 6), (10, 50)]:
        page = await listing(services, page=PageRequest(skip=skip, take=take))
        assert ids(page) == [s.id for s in twelve][skip : skip + take]
        assert page.total == 12


async def test_a_page_past_the_end_is_empty_but_counted(services, twelve):
    page = await listing(services, page=PageRequest(skip=12, take=5))
    assert page.items == []
    assert page.total == 12


async def test_ties_are_broken_by_id_in_the_direction_of_the_last_key(services, clock):
    made = [await add(services, clock, step=0) for _ in range(6)]
    by_id = sorted(s.id for s in made)
    assert ids(await listing(services)) == by_id
    newest_first = await listing(services, sort=(SortKey(field="created_at", descending=True),))
    assert ids(newest_first) == by_id[::-1]


async def test_descending_sort_and_nulls_as_the_smallest_value(services, twelve):
    key = (SortKey(field="subject"),)
    ascending = await listing(services, sort=key)
    assert ascending.items[0].subject is None
    descending = await listing(services, sort=(SortKey(field="subject", descending=True),))
    assert descending.items[-1].subject is None
    subjects = [s.subject for s in descending.items[:-1]]
    assert subjects == sorted(subjects, reverse=True)


async def test_fallbacks_sort_by_the_first_non_null_field(services, twelve):
    page = await listing(services, sort=(SortKey(field="device_name", fallbacks=("device_id",)),))
    shown = [s.device.name or s.device.id for s in page.items]
    assert shown == sorted(shown)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SessionFilter(field="subject", op="eq", values=("user-1",)), lambda s: s.subject == "user-1"),
        (SessionFilter(field="subject", op="neq", values=("user-1",)), lambda s: s.subject != "user-1"),
        (
            SessionFilter(field="subject", op="in", values=("user-1", "user-2")),
            lambda s: s.subject in {"user-1", "user-2"},
        ),
        (
            SessionFilter(field="subject", op="like", values=("USER-*",)),
            lambda s: (s.subject or "").startswith("user-"),
        ),
        (SessionFilter(field="subject", op="gt", values=("user-2",)), lambda s: (s.subject or "") > "user-2"),
        (
            SessionFilter(field="subject", op="le", values=("user-2",)),
            lambda s: s.subject is not None and s.subject <= "user-2",
        ),
        (SessionFilter(field="device_env", op="eq", values=("PDA",)), lambda s: s.device.env == "PDA"),
        (
            SessionFilter(field="device_env", op="eq", values=("test",), fallbacks=("dialect",)),
            lambda s: s.device.env is None,
        ),
        (SessionFilter(field="version", op="ge", values=(1,)), lambda s: True),
        (SessionFilter(field="version", op="in", values=(2, 3)), lambda s: False),
    ],
)
async def test_filters_select_what_their_operator_says(services, twelve, flt, expected):
    assert ids(await listing(services, filters=(flt,))) == [s.id for s in twelve if expected(s)]


async def test_time_filters_compare_instants(services, twelve):
    middle = twelve[6].created_at
    after = await listing(services, filters=(SessionFilter(field="created_at", op="gt", values=(middle,)),))
    assert ids(after) == [s.id for s in twelve[7:]]
    exact = await listing(services, filters=(SessionFilter(field="created_at", op="eq", values=(middle,)),))
    assert ids(exact) == [twelve[6].id]


async def test_like_takes_sql_wildcards_literally(services, clock):
    odd = await add(services, clock, subject="50%_off")
    await add(services, clock, subject="500 off")
    page = await listing(services, filters=(SessionFilter(field="subject", op="like", values=("50%_*",)),))
    assert ids(page) == [odd.id]


async def test_id_filters_take_complete_ids_in_either_form_and_hex_text_otherwise(services, twelve):
    target = twelve[3]
    hexed = uuid.UUID(target.id).hex
    for value in (target.id, hexed, hexed.upper()):
        page = await listing(services, filters=(SessionFilter(field="id", op="eq", values=(value,)),))
        assert ids(page) == [target.id]
    prefix = await listing(services, filters=(SessionFilter(field="id", op="like", values=(hexed[:-2] + "*",)),))
    assert target.id in ids(prefix)
    later = await listing(services, filters=(SessionFilter(field="id", op="gt", values=(hexed[:20],)),))
    assert ids(later) == [s.id for s in twelve if uuid.UUID(s.id).hex > hexed[:20]]
    nothing = await listing(services, filters=(SessionFilter(field="id", op="eq", values=("not-an-id",)),))
    assert nothing.items == []
    everything = await listing(services, filters=(SessionFilter(field="id", op="neq", values=("not-an-id",)),))
    assert len(everything.items) == 12
    none_in = await listing(services, filters=(SessionFilter(field="id", op="in", values=("x", "y")),))
    assert none_in.items == []


@pytest.mark.parametrize(
    "sort",
    [
        (),
        (SortKey(field="created_at", descending=True),),
        (SortKey(field="subject"), SortKey(field="device_env", descending=True)),
        (SortKey(field="subject", descending=True), SortKey(field="device_name", fallbacks=("device_id",))),
        (SortKey(field="id", descending=True),),
    ],
)
async def test_keyset_paging_walks_the_same_order_as_offsets(services, twelve, sort):
    everything = ids(await listing(services, sort=sort))
    walked, after = [], None
    while True:
        page = await listing(services, sort=sort, page=PageRequest(take=5), after=after)
        walked += ids(page)
        if len(page.items) < 5:
            break
        last = page.items[-1]
        values = {
            "created_at": last.created_at,
            "subject": last.subject,
            "device_env": last.device.env,
            "device_name": last.device.name or last.device.id,
            "id": last.id,
        }
        keys = sort or (SortKey(field="created_at"),)
        after = (*(values[k.field] for k in keys), *(() if any(k.field == "id" for k in keys) else (last.id,)))
    assert walked == everything


async def test_count_only_counts_without_reading_rows(services, twelve):
    page = await listing(services, count_only=True, page=PageRequest(skip=10, take=5))
    assert page.items == []
    assert page.total == 12


async def test_expired_and_revoked_sessions_are_not_listed(services, clock, twelve):
    await services.sessions.revoke(twelve[0].id)
    clock.advance(3600 - 10)  # the first two have expired by now
    page = await listing(services)
    assert ids(page) == [s.id for s in twelve[2:]]
    assert page.total == 10


async def test_one_principal_sees_only_their_sessions(services, clock):
    mine = [await add(services, clock, principal_id="p1") for _ in range(3)]
    await add(services, clock, principal_id="p2")
    assert ids(await listing(services, principal_id="p1")) == [s.id for s in mine]


async def test_other_tenants_are_invisible(services, clock):
    await add(services, clock, tenant="other")
    assert (await listing(services)).total == 0


@pytest.fixture
def statements(services):
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("SELECT") and "FROM sg_session" in statement:
            captured.append((statement, parameters))

    event.listen(services.engine.sync_engine, "before_cursor_execute", capture)
    yield captured
    event.remove(services.engine.sync_engine, "before_cursor_execute", capture)


def reads_an_index(plan: str) -> bool:
    full_scan = re.search(r"(SCAN|SEARCH) sg_session(?! USING)", plan) or "Seq Scan" in plan
    return not full_scan and "ix_sg_session_" in plan


def sorts(plan: str) -> bool:
    return "TEMP B-TREE" in plan or "Sort" in plan


@pytest.mark.parametrize("skip", [0, 90])
async def test_the_default_listing_and_its_count_read_an_index_not_the_table(services, clock, statements, skip):
    for _ in range(100):
        await add(services, clock, step=0.5)
    statements.clear()
    page = await listing(services, page=PageRequest(skip=skip, take=10))
    assert len(page.items) == 10
    assert len(statements) == 2
    for statement, parameters in statements:
        plan = await explain(services, statement, parameters)
        assert reads_an_index(plan), plan
        assert not sorts(plan), plan


async def test_the_expiry_sort_reads_its_index_in_order(services, clock, statements):
    for _ in range(30):
        await add(services, clock)
    statements.clear()
    await listing(services, sort=(SortKey(field="expires_at", descending=True),), with_total=False)
    plan = await explain(services, *statements[-1])
    assert reads_an_index(plan), plan
    assert not sorts(plan), plan


async def test_keyset_pages_seek_the_index(services, clock, statements):
    made = [await add(services, clock) for _ in range(30)]
    statements.clear()
    anchor = made[20]
    page = await listing(services, after=(anchor.created_at, anchor.id), page=PageRequest(take=5), with_total=False)
    assert ids(page) == [s.id for s in made[21:26]]
    plan = await explain(services, *statements[-1])
    assert reads_an_index(plan), plan
    assert "created_at>" in plan.replace(" ", "") or "Index Cond" in plan, plan


async def test_a_keyset_of_the_wrong_length_is_refused(services):
    with pytest.raises(ValueError, match="keyset needs 2 values"):
        await listing(services, after=("x",), sort=(SortKey(field="subject"),))


async def test_timestamps_survive_the_round_trip_exactly(services, clock):
    clock.advance(0.123456)
    made = await add(services, clock)
    page = await listing(services, filters=(SessionFilter(field="created_at", op="eq", values=(made.created_at,)),))
    assert ids(page) == [made.id]
    assert page.items[0].created_at == clock.now
    assert made.expires_at - made.created_at == timedelta(hours=1)
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sg_session"))).scalar() == 1


async def test_one_principals_listing_and_count_read_their_index(services, clock, statements):
    for i in range(40):
        await add(services, clock, principal_id=f"p-{i % 4}")
    statements.clear()
    page = await listing(services, principal_id="p-1", page=PageRequest(take=5))
    assert page.total == 10
    assert len(statements) == 2
    for statement, parameters in statements:
        plan = await explain(services, statement, parameters)
        assert reads_an_index(plan), plan
        assert not sorts(plan), plan
