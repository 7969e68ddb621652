"""Every route resolves its dependencies one at a time (see DEPENDENCY_CHAIN in sessiongate.app).

Litestar resolves dependencies that do not depend on each other in an anyio task group per request; for the
gateway's lookups that task group cost a fifth of a validate's throughput, so none may be siblings.
"""

from __future__ import annotations

from sessiongate.app import create_app
from sessiongate.settings import Settings


def test_no_route_resolves_two_dependencies_side_by_side(tmp_path):
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/chain.db"))
    side_by_side = {}
    checked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            batches = handler.create_kwargs_model(path_parameters=route.path_parameters).dependency_batches
            checked += bool(batches)
            siblings = [sorted(d.key for d in batch) for batch in batches if len(batch) > 1]
            if siblings:
                side_by_side[f"{sorted(getattr(handler, 'http_methods', ()))} {route.path}"] = siblings
    assert checked > 20  # every dialect's routes were looked at
    assert side_by_side == {}


def test_every_dialect_handler_can_check_its_ctx_with_isinstance(tmp_path):
    # Litestar checks each dependency it passes with isinstance, on every request; a subscripted generic answers
    # that with a TypeError, raised and caught per request.
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/ctx.db"))
    checked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            parameter = handler.parsed_fn_signature.parameters.get("ctx")
            if parameter is not None:
                assert isinstance(object(), parameter.annotation) is False
                checked += 1
    assert checked > 20  # every dialect's routes were looked at
