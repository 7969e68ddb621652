"""While it serves, the app keeps what start-up built out of the cyclic collector's full passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

from litestar.testing import TestClient

from sessiongate.app import create_app
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
