"""The app's outermost handler counts, times and tracks in flight each routed request under its route template, counts
no unrouted request and not ``/metrics``, and sees the status of answers the app's exception handler wrote."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Litestar, get
from litestar.exceptions import NotAuthorizedException
from litestar.params import PathParameter
from prometheus_client import REGISTRY

from sessiongate.observability import RequestObserver
from sessiongate.settings import Settings

released = asyncio.Event()
seen_in_flight: list[float | None] = []


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"app_name": "sessiongate", **labels})


@get("/observed/{item:str}")
async def slow(item: Annotated[str, PathParameter()]) -> dict[str, str]:
    seen_in_flight.append(
        _sample("sessiongate_requests_in_progress", method="GET", path="/observed/{item}", status_code="200")
    )
    return {"item": item}


@get("/observed-refusal", sync_to_thread=False)
def refuse() -> None:
    raise NotAuthorizedException


@get("/metrics", sync_to_thread=False)
def metrics() -> str:
    return ""


def _observed_app() -> tuple[Litestar, RequestObserver]:
    app = Litestar([slow, refuse, metrics])
    return app, RequestObserver(app.asgi_handler, router=app.asgi_router, access_log=False, settings=Settings())


async def _call(observed: tuple[Litestar, RequestObserver], path: str) -> int:
    app, observer = observed
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    scope["app"] = scope["litestar_app"] = app  # set by Litestar's own __call__, which the observer sits inside
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await observer(scope, receive, send)  # type: ignore[arg-type]
    return statuses[0]


def _count(path: str, status: str) -> float:
    return _sample("sessiongate_requests_total", method="GET", path=path, status_code=status) or 0.0


def test_a_routed_request_is_counted_in_flight_and_after_under_its_template() -> None:
    observed = _observed_app()
    template = "/observed/{item}"  # the route template, not the path as sent
    before = _count(template, "200")
    seen_in_flight.clear()

    assert asyncio.run(_call(observed, "/observed/a-session-id")) == 200

    assert seen_in_flight == [1.0]  # the gauge of its route, while it was being served
    assert _sample("sessiongate_requests_in_progress", method="GET", path=template, status_code="200") == 0.0
    assert _count(template, "200") == before + 1
    assert _sample("sessiongate_request_duration_seconds_count", method="GET", path=template, status_code="200")


def test_an_answer_the_exception_handler_wrote_is_counted_with_its_status() -> None:
    observed = _observed_app()
    before = _count("/observed-refusal", "401")
    assert asyncio.run(_call(observed, "/observed-refusal")) == 401
    assert _count("/observed-refusal", "401") == before + 1


def test_neither_an_unrouted_request_nor_a_scrape_is_counted() -> None:
    observed = _observed_app()
    assert asyncio.run(_call(observed, "/no-such-route/secret-token")) == 404
    assert asyncio.run(_call(observed, "/metrics")) == 200
    labels = {
        s.labels.get("path") for m in REGISTRY.collect() for s in m.samples if s.name.startswith("sessiongate_req")
    }
    assert not {p for p in labels if p and ("secret-token" in p or p == "/metrics")}
