"""Zelf's one route."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from sessiongate.dialect import DialectContext, client_address, json_body, within_create_budget
from sessiongate_zelf import mapping, wire
from sessiongate_zelf.options import ZelfOptions

__all__ = ("create_session",)

Context = DialectContext[ZelfOptions]


@post(
    "/api/sessions", operation_id="createSession", status_code=200, tags=["zelf"], before_request=within_create_budget
)
async def create_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> wire.CreateSessionResponse:
    """Create a device session, or return the caller's live one (killSession forces a new one)."""
    data = await json_body(request, wire.CreateSession)
    address = client_address(request, trust_forwarded=ctx.settings.trust_forwarded)
    new = mapping.create_in(data, client_address=address, tenant=ctx.options.tenant)
    sessions = ctx.sessions
    create = sessions.replace if data.kill_session else sessions.create
    created = await create(new, ctx.policy)
    session = created.session
    token = sessions.issue_jwt(session, mapping.claims(session), issued_at=created.token_issued_at)
    return mapping.session_out(session, token)
