"""``/healthz`` and ``/readyz``: whether the process is up, and whether it can serve."""

from __future__ import annotations

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec

from sessiongate.dialects.responses import Response
from sessiongate.readiness import Readiness, ReadinessCheck

__all__ = ("health_routes",)


def health_routes(readiness: ReadinessCheck) -> list[HTTPRouteHandler]:
    """The two probes; ``/readyz`` asks ``readiness``."""

    @get("/healthz", include_in_schema=True, tags=["operations"], sync_to_thread=False)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @get(
        "/readyz",
        tags=["operations"],
        responses={503: ResponseSpec(data_container=Readiness, description="Not ready: the reasons why")},
    )
    async def readyz() -> Response[Readiness]:
        """The database answers and has every migration this gateway needs; if not (503), the reasons why."""
        answer = await readiness()
        return Response(answer, status_code=200 if answer.status == "ok" else 503)

    return [healthz, readyz]
