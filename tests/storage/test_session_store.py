"""Every clause of ``SessionStore``'s contract (``sessiongate.core.store``), on each database alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest

from sessiongate.core.errors import SessionLimitReached
from sessiongate.core.models import Device, NewSession, PageRequest, Session, SessionCap, SessionQuery
from sessiongate.core.store import SessionsFilter, reuse_key_digest
from tests.storage.conftest import TTL, Backend, device

pytestmark = pytest.mark.anyio

ODD = {"roles": ["a", "b"], "n": 1.5, "nested": {"deep": [1, None, True]}, "text": "☃ ü"}


def revoked(session: Session, at) -> Session:
    return msgspec.structs.replace(session, revoked_at=at, version=session.version + 1)


async def capped(backend: Backend, cap: SessionCap, *, idle=None, spared=(), **fields):
    fields.setdefault("dialect", "test")
    return await backend.sessions.insert_capped(
        NewSession(**fields),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest=None,
        cap=cap,
        idle=idle,
        spared=spared,
    )


async def live_ids(backend: Backend, **query) -> list[str]:
    page = await backend.sessions.list(SessionQuery(page=PageRequest(take=500), **query), now=backend.now)
    return [s.id for s in page.items]


# insert


async def test_insert_returns_the_new_session_exactly_as_stored_every_field_and_microsecond_kept(backend):
    full = Device(id="dev-1", name="Kassa ☃", kind="phone", model="X", sdk_version="6.35.3", env="PDA")
    session = await backend.insert(
        tenant="t",
        principal_id="p",
        subject="s ü",
        client_address="10.0.0.1",
        device=full,
        attributes=ODD,
        digest="digest-1",
        absolute=timedelta(hours=2),
    )
    now = backend.now
    assert now.microsecond == 654_321
    expected = Session(
        id=session.id,
        tenant="t",
        dialect="test",
        principal_id="p",
        subject="s ü",
        client_address="10.0.0.1",
        device=full,
        created_at=now,
        last_seen_at=now,
        expires_at=now + TTL,
        absolute_expires_at=now + timedelta(hours=2),
        revoked_at=None,
        version=1,
        attributes=ODD,
    )
    assert session == expected
    assert await backend.sessions.by_id(session.id) == expected
    assert await backend.sessions.by_digest("digest-1") == (expected, "digest-1")
    assert session.created_at.utcoffset() == timedelta(0)


async def test_insert_writes_its_audit_event_with_the_new_session_and_none_for_a_reused_one(backend):
    first, reused = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k", subject="first"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest="first",
        audit=backend.audit_row(tenant="default"),
    )
    assert not reused
    backend.clock.advance(5)
    again, reused = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k", subject="second", principal_id="someone-else"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest="second",
        audit=backend.audit_row(tenant="default"),
    )
    assert reused
    assert again == first  # the live holder, unchanged: not its subject, principal, expiry or secret
    assert await backend.sessions.by_digest("first") == (first, "first")
    assert await backend.sessions.by_digest("second") is None
    assert await backend.rows("SELECT kind, session_id FROM sg_audit_event") == [("session.created", first.id)]


@pytest.mark.parametrize("ending", ["revoked", "expired to the microsecond"])
async def test_insert_replaces_an_ended_holder_of_the_reuse_key_with_a_new_session(backend, ending):
    old, _ = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k", subject="old"),
        now=backend.now,
        expires_at=backend.now + timedelta(seconds=30),
        absolute_expires_at=None,
        token_digest="old",
    )
    if ending == "revoked":
        await backend.sessions.revoke(old.id, now=backend.now)
    else:
        backend.clock.advance(30)  # expires_at == now: no longer live (Session.is_live), so the key is free
    new, reused = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k", subject="new"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest="new",
    )
    assert not reused
    assert (new.id, new.subject, new.revoked_at, new.version) != (old.id, "old", None, 1)
    assert (new.subject, new.revoked_at, new.version, new.created_at) == ("new", None, 1, backend.now)
    assert await backend.sessions.by_digest("old") is None
    assert await backend.sessions.by_digest("new") == (new, "new")
    assert await backend.rows("SELECT count(*) FROM sg_session") == [(1,)]  # replaced in place, not added


# insert_capped and count_live


async def test_insert_capped_evicts_exactly_the_oldest_counted_sessions_and_returns_them_revoked(backend):
    clock = backend.clock
    idle_one = await backend.insert(principal_id="p")
    uncounted = [
        await backend.insert(principal_id="q"),
        await backend.insert(principal_id="p", dialect="other"),
        await backend.insert(principal_id="p", tenant="t2"),
        await backend.insert(principal_id="p", ttl=timedelta(seconds=5)),  # expired by then
        await backend.insert(principal_id="p", absolute=timedelta(seconds=50)),  # past its absolute end by then
    ]
    gone = await backend.insert(principal_id="p")
    await backend.sessions.revoke(gone.id, now=backend.now)
    counted = []
    for _ in range(3):
        clock.advance(10)
        counted.append(await backend.insert(principal_id="p"))
    clock.advance(10)
    spared = await backend.insert(principal_id="p")
    clock.advance(60)
    before = {s.id: await backend.sessions.by_id(s.id) for s in [idle_one, *uncounted, gone, *counted, spared]}

    assert await backend.sessions.count_live(NewSession(dialect="test", principal_id="p"), now=backend.now) == 5
    args = {"idle": 95.0, "spared": [spared.id]}
    assert await backend.sessions.count_live(NewSession(dialect="test", principal_id="p"), now=backend.now, **args) == 3

    new, reused, evicted = await capped(backend, SessionCap(most=2), principal_id="p", **args)

    assert not reused
    assert new.principal_id == "p"
    assert new.revoked_at is None
    oldest = counted[:2]
    assert sorted(evicted, key=lambda s: s.created_at) == [revoked(s, backend.now) for s in oldest]
    for s in oldest:
        assert await backend.sessions.by_id(s.id) == revoked(s, backend.now)
    for sid, was in before.items():
        if sid not in {s.id for s in oldest}:
            assert await backend.sessions.by_id(sid) == was, sid
    assert set(await live_ids(backend, principal_id="p")) >= {counted[2].id, spared.id, new.id, idle_one.id}


async def test_insert_capped_refusing_undoes_the_insert_and_the_replacement_of_an_ended_key_holder(backend):
    holders = [await backend.insert(principal_id="p") for _ in range(2)]
    ended, _ = await backend.sessions.insert(
        NewSession(dialect="test", principal_id="p", reuse_key="k"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest="ended",
    )
    ended = await backend.sessions.revoke(ended.id, now=backend.now)
    before = await backend.rows("SELECT subject, version, revoked_at IS NULL FROM sg_session ORDER BY created_at")

    with pytest.raises(SessionLimitReached):
        await capped(backend, SessionCap(most=2, action="refuse"), principal_id="p", reuse_key="k", subject="new")

    assert await backend.rows("SELECT subject, version, revoked_at IS NULL FROM sg_session ORDER BY created_at") == (
        before
    )
    assert await backend.sessions.by_id(ended.id) == ended  # the ended holder's row is back as it was
    assert [await backend.sessions.by_id(s.id) for s in holders] == holders
    again, reused, evicted = await capped(backend, SessionCap(most=3, action="refuse"), principal_id="p", reuse_key="k")
    assert (reused, evicted, again.revoked_at) == (False, [], None)


@pytest.mark.parametrize("action", ["refuse", "evict_oldest"])
async def test_insert_capped_returns_a_live_reuse_key_holder_unchanged_and_evicts_nothing_even_at_the_cap(
    backend, action
):
    holder, _ = await backend.sessions.insert(
        NewSession(dialect="test", principal_id="p", reuse_key="k"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest=None,
    )
    other = await backend.insert(principal_id="p")
    backend.clock.advance(1)
    found, reused, evicted = await capped(backend, SessionCap(most=1, action=action), principal_id="p", reuse_key="k")
    assert (found, reused, evicted) == (holder, True, [])
    assert await backend.sessions.by_id(other.id) == other
    holder_left_out = NewSession(dialect="test", principal_id="p", reuse_key="k")
    assert await backend.sessions.count_live(holder_left_out, now=backend.now) == 1


async def test_insert_capped_counts_a_session_without_a_principal_under_its_device(backend):
    on_a = [await backend.insert(device=device("dev-a")) for _ in range(2)]
    on_b = await backend.insert(device=device("dev-b"))
    a_principals = await backend.insert(device=device("dev-a"), principal_id="p")
    backend.clock.advance(1)
    new, _, evicted = await capped(backend, SessionCap(most=1), device=device("dev-a"))
    assert sorted(s.id for s in evicted) == sorted(s.id for s in on_a)
    assert new.device.id == "dev-a"
    assert [await backend.sessions.by_id(s.id) for s in (on_b, a_principals)] == [on_b, a_principals]


# lookups and secrets


async def test_lookups_return_ended_sessions_too_and_none_for_what_was_never_stored(backend):
    ended = await backend.insert(digest="ended")
    ended = await backend.sessions.revoke(ended.id, now=backend.now)
    expired = await backend.insert(digest="expired", ttl=timedelta(seconds=1))
    backend.clock.advance(2)
    assert await backend.sessions.by_digest("ended") == (ended, "ended")
    assert await backend.sessions.by_id(ended.id) == ended
    assert await backend.sessions.by_digest("expired") == (expired, "expired")
    assert await backend.sessions.by_id(expired.id) == expired
    assert await backend.sessions.by_digest("never") is None
    assert await backend.sessions.by_id(str(uuid.uuid4())) is None
    assert await backend.sessions.by_id("not-a-uuid") is None


async def test_a_new_secret_replaces_the_old_and_a_redigest_never_overwrites_a_secret_bound_meanwhile(backend):
    session = await backend.insert(digest="old")
    await backend.sessions.set_token_digest(session.id, "bound")
    assert await backend.sessions.by_digest("old") is None
    assert await backend.sessions.by_digest("bound") == (session, "bound")  # nothing else about it changed
    await backend.sessions.replace_token_digest("old", "old-under-new-key")  # stale: "bound" stays
    assert await backend.sessions.by_digest("old-under-new-key") is None
    await backend.sessions.replace_token_digest("bound", "bound-under-new-key")
    assert await backend.sessions.by_digest("bound") is None
    assert await backend.sessions.by_digest("bound-under-new-key") == (session, "bound-under-new-key")


# touch and revoke


async def test_touch_records_a_use_and_leaves_a_revoked_or_unknown_session_alone(backend):
    session = await backend.insert()
    backend.clock.advance(7.5)
    later = backend.now + timedelta(hours=3)
    used = await backend.sessions.touch(session.id, now=backend.now, expires_at=later)
    assert used == msgspec.structs.replace(session, last_seen_at=backend.now, expires_at=later, version=2)
    assert await backend.sessions.by_id(session.id) == used
    ended = await backend.sessions.revoke(session.id, now=backend.now)
    assert await backend.sessions.touch(session.id, now=backend.now, expires_at=later) is None
    assert await backend.sessions.by_id(session.id) == ended
    assert await backend.sessions.touch(str(uuid.uuid4()), now=backend.now, expires_at=later) is None
    assert await backend.sessions.touch("not-a-uuid", now=backend.now, expires_at=later) is None


async def test_revoke_ends_a_session_once_and_reports_it_as_revoked(backend):
    session = await backend.insert()
    first_at = backend.now
    assert await backend.sessions.revoke(session.id, now=first_at) == revoked(session, first_at)
    backend.clock.advance(1)
    assert await backend.sessions.revoke(session.id, now=backend.now) is None
    assert await backend.sessions.by_id(session.id) == revoked(session, first_at)
    assert await backend.sessions.revoke(str(uuid.uuid4()), now=backend.now) is None


async def test_revoke_for_principal_counts_and_ends_only_what_its_filters_name(backend):
    mine = {
        "web": await backend.insert(principal_id="p", device=device("d1")),
        "web-d2": await backend.insert(principal_id="p", device=device("d2")),
        "other-dialect": await backend.insert(principal_id="p", device=device("d1"), dialect="other"),
        "kept": await backend.insert(principal_id="p"),
        "spare": await backend.insert(principal_id="p"),
    }
    already = await backend.insert(principal_id="p")
    await backend.sessions.revoke(already.id, now=backend.now)
    untouched = [
        await backend.insert(principal_id="q"),
        await backend.insert(principal_id="p", tenant="t2"),
    ]
    revoke = backend.sessions.revoke_for_principal
    assert await revoke("default", "p", now=backend.now, dialect="test", device_id="d1") == 1
    assert await revoke("default", "p", now=backend.now, dialect="nobody") == 0
    assert await revoke("default", "p", now=backend.now, device_id="d2") == 1
    assert await revoke("default", "p", now=backend.now, except_id=mine["kept"].id) == 2  # not `already` again
    assert await revoke("default", "p", now=backend.now, except_id=mine["kept"].id) == 0
    assert await live_ids(backend, principal_id="p") == [mine["kept"].id]
    for name in ("web", "web-d2", "other-dialect", "spare"):
        assert (await backend.sessions.by_id(mine[name].id)).revoked_at == backend.now, name
    assert [await backend.sessions.by_id(s.id) for s in untouched] == untouched


# reuse keys


async def test_revoke_reuse_key_ends_the_live_holder_and_frees_the_key(backend):
    holder, _ = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest=None,
    )
    stored = reuse_key_digest("k")
    assert await backend.sessions.revoke_reuse_key(stored, now=backend.now) == [revoked(holder, backend.now)]
    assert await backend.sessions.revoke_reuse_key(stored, now=backend.now) == []
    assert await backend.sessions.revoke_reuse_key("k", now=backend.now) == []  # the stored form only
    after = await backend.insert(reuse_key="k")
    assert after.id != holder.id


@pytest.mark.parametrize(
    ("released_for", "until_s", "outcome"),
    [
        ("another", 30, "revoked at once"),
        (None, 30, "revoked at once"),
        ("owner", 30, "ends at until"),
        ("owner", 7200, "keeps its earlier end"),
    ],
)
async def test_release_reuse_key_frees_the_key_and_ends_its_holder_as_its_principal_decides(
    backend, released_for, until_s, outcome
):
    holder, _ = await backend.sessions.insert(
        NewSession(dialect="test", reuse_key="k", principal_id="owner"),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest="holder",
    )
    backend.clock.advance(3)
    now, until = backend.now, backend.now + timedelta(seconds=until_s)
    released = await backend.sessions.release_reuse_key(
        reuse_key_digest("k"), now=now, principal_id=released_for, until=until
    )
    end = {"revoked at once": holder.expires_at, "ends at until": until, "keeps its earlier end": holder.expires_at}
    expected = msgspec.structs.replace(
        holder,
        revoked_at=now if outcome == "revoked at once" else None,
        expires_at=end[outcome],
        version=2,
    )
    assert released == [expected]
    assert await backend.sessions.by_id(holder.id) == expected
    assert await backend.sessions.by_digest("holder") == (expected, "holder")  # its secret still names it
    successor = await backend.insert(reuse_key="k", principal_id="owner")  # the key is free
    assert successor.id != holder.id
    assert (
        await backend.sessions.release_reuse_key(reuse_key_digest("nobody"), now=now, principal_id=None, until=until)
        == []
    )


# admin_page


async def admin_ids(backend: Backend, *, limit: int = 200, **where) -> list[str]:
    sessions, more = await backend.sessions.admin_page(
        SessionsFilter(**where), now=backend.now, limit=limit, after=None
    )
    assert not more
    return [s.id for s in sessions]


async def test_admin_page_lists_every_tenant_dialect_and_state_newest_first_by_keyset(backend):
    made = [
        await backend.insert(tenant="t1", attributes=ODD),
        await backend.insert(tenant="t2", dialect="other"),
        await backend.insert(tenant="t1", ttl=timedelta(seconds=1)),
        await backend.insert(tenant="t3", principal_id="p"),
        await backend.insert(tenant="t1"),
    ]
    await backend.sessions.revoke(made[3].id, now=backend.now)
    backend.clock.advance(1)  # made[2] expired
    newest = [await backend.sessions.by_id(s.id) for s in reversed(made)]
    pages, after = [], None
    while True:
        page, more = await backend.sessions.admin_page(SessionsFilter(), now=backend.now, limit=2, after=after)
        pages.append(page)
        if not more:
            break
        after = uuid.UUID(page[-1].id)
    assert pages == [newest[:2], newest[2:4], newest[4:]]  # each session as stored, its attributes too
    assert await backend.sessions.admin_page(SessionsFilter(), now=backend.now, limit=5, after=None) == (newest, False)
    last = uuid.UUID(made[0].id)
    assert await backend.sessions.admin_page(SessionsFilter(), now=backend.now, limit=5, after=last) == ([], False)


async def test_admin_page_holds_every_condition_given_and_judges_the_state_at_now(backend):
    start = backend.now
    old = await backend.insert(
        tenant="t1", principal_id="p", client_address="192.0.2.1", device=device("d1"), ttl=timedelta(seconds=30)
    )
    backend.clock.advance(10)
    revoked = await backend.insert(tenant="t1", dialect="other", principal_id="p")
    await backend.sessions.revoke(revoked.id, now=backend.now)
    backend.clock.advance(10)
    new = await backend.insert(tenant="t2", principal_id="q", device=device("d1"))
    await backend.sessions.touch(old.id, now=backend.now, expires_at=start + timedelta(seconds=30))
    assert await admin_ids(backend, tenant="t1") == [revoked.id, old.id]
    assert await admin_ids(backend, dialect="other") == [revoked.id]
    assert await admin_ids(backend, principal_id="p", tenant="t1", dialect="test") == [old.id]
    assert await admin_ids(backend, device_id="d1") == [new.id, old.id]
    assert await admin_ids(backend, client_address="192.0.2.1") == [old.id]
    assert await admin_ids(backend, tenant="nowhere") == []
    middle = start + timedelta(seconds=10)
    assert await admin_ids(backend, created_after=middle) == [new.id, revoked.id]  # inclusive
    assert await admin_ids(backend, created_before=middle) == [old.id]  # exclusive
    assert await admin_ids(backend, last_seen_after=backend.now) == [new.id, old.id]  # old was touched now
    assert await admin_ids(backend, last_seen_before=backend.now) == [revoked.id]
    assert await admin_ids(backend, state="live") == [new.id, old.id]
    assert await admin_ids(backend, state="revoked") == [revoked.id]
    assert await admin_ids(backend, state="expired") == []
    backend.clock.advance(10)  # old's expires_at == now
    assert await admin_ids(backend, state="live") == [new.id]
    assert await admin_ids(backend, state="expired") == [old.id]
    assert await admin_ids(backend, state="expired", tenant="t2") == []


# list and delete_expired


async def assert_lists(backend: Backend, expected: list[Session], tenant: str = "default") -> None:
    """Every way of listing ``tenant`` agrees on its live sessions: ``expected``, in creation order."""
    want = [s.id for s in sorted(expected, key=lambda s: (s.created_at, uuid.UUID(s.id)))]
    now = backend.now
    count = await backend.sessions.list(SessionQuery(tenant=tenant, count_only=True), now=now)
    assert (count.total, count.items) == (len(want), [])
    paged, skip = [], 0
    while True:
        page = await backend.sessions.list(SessionQuery(tenant=tenant, page=PageRequest(skip=skip, take=2)), now=now)
        assert page.total == len(want)
        if not page.items:
            break
        paged += [s.id for s in page.items]
        skip += 2
    assert paged == want
    keyset, after = [], None
    while True:
        query = SessionQuery(tenant=tenant, page=PageRequest(take=2), with_total=False, after=after)
        page = await backend.sessions.list(query, now=now)
        assert page.total is None
        if not page.items:
            break
        keyset += [s.id for s in page.items]
        after = (page.items[-1].created_at, page.items[-1].id)
    assert keyset == want


async def test_listing_totals_pages_and_keysets_agree_on_the_live_sessions_through_every_kind_of_change(backend):
    clock = backend.clock
    a, b, c = [await backend.insert(principal_id="p2") for _ in range(3)]
    other_tenant = await backend.insert(tenant="other")
    await assert_lists(backend, [a, b, c])
    await backend.sessions.revoke(b.id, now=backend.now)
    await assert_lists(backend, [a, c])

    clock.advance(1)
    d = await backend.insert(reuse_key="k")
    await backend.sessions.revoke(d.id, now=backend.now)
    e = await backend.insert(reuse_key="k")  # takes the revoked row over: unrevoked again
    await assert_lists(backend, [a, c, e])

    f = await backend.insert(ttl=timedelta(seconds=10))
    await assert_lists(backend, [a, c, e, f])
    clock.advance(10)  # f's expires_at == now
    await assert_lists(backend, [a, c, e])

    await backend.sessions.release_reuse_key(
        reuse_key_digest("k"), now=backend.now, principal_id=None, until=backend.now
    )
    await assert_lists(backend, [a, c])
    g = await backend.insert(reuse_key="k2", principal_id="p")
    until = backend.now + timedelta(seconds=5)
    await backend.sessions.release_reuse_key(reuse_key_digest("k2"), now=backend.now, principal_id="p", until=until)
    await assert_lists(backend, [a, c, g])
    clock.advance(5)
    await assert_lists(backend, [a, c])

    assert await backend.sessions.delete_expired(now=backend.now, batch=100) == 4  # b, e (revoked), f, g (expired)
    await assert_lists(backend, [a, c])
    assert await backend.sessions.revoke_for_principal("default", "p2", now=backend.now) == 2
    await assert_lists(backend, [])
    await assert_lists(backend, [other_tenant], tenant="other")


async def test_delete_expired_takes_what_expired_by_now_inclusive_and_the_revoked_but_never_a_live_one(backend):
    at_now = await backend.insert(ttl=timedelta(seconds=10))
    ended = await backend.insert()
    await backend.sessions.revoke(ended.id, now=backend.now)
    live = await backend.insert(ttl=timedelta(seconds=10, microseconds=1))
    backend.clock.advance(10)
    assert await backend.sessions.delete_expired(now=backend.now, batch=1) == 1
    assert await backend.sessions.delete_expired(now=backend.now, batch=5) == 1
    assert await backend.sessions.delete_expired(now=backend.now, batch=5) == 0
    assert await backend.sessions.by_id(at_now.id) is None
    assert await backend.sessions.by_id(ended.id) is None
    assert await backend.sessions.by_id(live.id) == live
