"""The app's background sweeper deletes what has run out: sessions, refresh tokens and old login failures."""

from __future__ import annotations

import time
from datetime import timedelta

import msgspec
from sqlalchemy import func, select

from sessiongate.runtime import Services
from sessiongate.storage.identity_tables import LoginFailureRecord
from sessiongate.storage.refresh_tables import RefreshTokenRecord
from sessiongate.storage.tables import SessionRecord

TABLES = {"sessions": SessionRecord, "refresh tokens": RefreshTokenRecord, "login failures": LoginFailureRecord}


def test_the_sweeper_deletes_expired_sessions_refresh_tokens_and_old_login_failures(make_client, clock):
    client = make_client(
        sweep_interval=0.05, admin_login="ops@example.com", admin_password="right-password-1", login_lock_seconds=60
    )
    services: Services = client.app.state.services
    created = client.post("/api/sessions", json={"identifier": "device-1"})
    assert created.status_code == 200
    refused = client.post("/node/api/users/session", json={"login": "ops@example.com", "password": "wrong"})
    assert refused.status_code == 401
    (session_id,) = client.blocking_portal.call(_session_ids, services)
    session = client.blocking_portal.call(services.sessions.get, session_id)
    ending = msgspec.structs.replace(session, expires_at=clock() + timedelta(seconds=600))
    client.blocking_portal.call(services.sessions.issue_refresh, ending)
    # One failure counted against the login, one against the client address.
    assert client.blocking_portal.call(_counts, services) == {"sessions": 1, "refresh tokens": 1, "login failures": 2}

    clock.advance(601)
    deadline = time.monotonic() + 10
    while (counts := client.blocking_portal.call(_counts, services)) != dict.fromkeys(TABLES, 0):
        assert time.monotonic() < deadline, f"still there after the sweeps: {counts}"
        time.sleep(0.05)


async def _session_ids(services: Services) -> list[str]:
    rows = await services.runner.read(select(SessionRecord.id))
    return [str(row[0]) for row in rows]


async def _counts(services: Services) -> dict[str, int]:
    return {
        name: (await services.runner.read(select(func.count()).select_from(table)))[0][0]
        for name, table in TABLES.items()
    }
