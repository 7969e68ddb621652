"""While it serves, the app keeps what start-up built out of the cyclic collector's full passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from datetime import UTC, datetime

from litestar.testing import TestClient

from sessiongate.app import create_app
from sessiongate.core.models import Device, Principal, Session
from sessiongate.settings import Settings


def test_start_up_objects_are_frozen_while_serving_and_thawed_at_shutdown(make_settings: Callable[..., Settings]):
    assert gc.get_freeze_count() == 0
    app = create_app(make_settings(), freeze_heap=True)  # as sessiongate serve's workers build theirs
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        # Imports, routes, plugins and the open database: tens of thousands of objects a full pass skips.
        assert gc.get_freeze_count() > 10_000
        assert not any(o is app for o in gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0


def test_an_app_that_has_shut_down_can_be_collected(make_settings: Callable[..., Settings]):
    with TestClient(create_app(make_settings(), freeze_heap=True)) as client:
        assert client.get("/healthz").status_code == 200
        gone = weakref.ref(client.app.state.services.engine)
    del client
    gc.collect()
    assert gone() is None


def test_an_app_built_without_freezing_freezes_nothing(make_settings: Callable[..., Settings]):
    # The tests' apps, one after another in one process: a frozen heap there kept every finished app's garbage.
    with TestClient(create_app(make_settings())) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0


def test_what_the_read_caches_keep_is_never_scanned_by_the_collector():
    # Thousands of sessions and principals sit in the read caches while the app serves; tracked, every full pass
    # scanned each of them with the GIL held (ARCHITECTURE rule 9).
    now = datetime.now(UTC)
    device = Device(id="d1", name="phone")
    session = Session(
        id="s1",
        tenant="default",
        dialect="issp",
        principal_id="p1",
        subject=None,
        client_address=None,
        device=device,
        created_at=now,
        last_seen_at=now,
        expires_at=now,
        absolute_expires_at=None,
        revoked_at=None,
        version=1,
        attributes={"nested": {"roles": ["admin"]}},
    )
    principal = Principal(id="p1", tenant="default", login="ada", roles=("admin",), created_at=now, updated_at=now)
    assert [gc.is_tracked(kept) for kept in (device, session, principal)] == [False, False, False]
