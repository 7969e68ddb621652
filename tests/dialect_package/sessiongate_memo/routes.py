"""memo's three routes: create a session with a note, read it back by its token, end it."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.di import NamedDependency

from sessiongate.dialect import (
    DialectContext,
    InvalidRequest,
    Response,
    Unauthenticated,
    bearer_token,
    json_body,
    models,
    within_create_budget,
)
from sessiongate_memo import notes, wire
from sessiongate_memo.options import MemoOptions

__all__ = ("create_session", "end_session", "read_session")

Context = DialectContext[MemoOptions]

NUL = "\x00"


@post("/memo/sessions", operation_id="createSession", status_code=201, before_request=within_create_budget)
async def create_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> wire.Created:
    """Create a session for ``subject`` holding ``note``; its bearer token is shown once."""
    data = await json_body(request, wire.CreateSession)
    if NUL in data.note:  # PostgreSQL cannot store it: refused on every database alike
        raise InvalidRequest("text must not contain NUL characters", field="note")
    tenant = ctx.options.tenant
    new = models.NewSession(tenant=tenant, dialect=ctx.dialect.name, subject=data.subject)
    # The note is written in the session's own transaction: both are kept, or neither.
    created = await ctx.sessions.create(
        new, ctx.policy, with_secret=True, also_write=lambda session: [notes.keep(session, data.note)]
    )
    assert created.secret is not None  # asked for: with_secret=True
    return wire.Created(
        id=created.session.id, token=created.secret, note=data.note, expires_at=created.session.expires_at
    )


@get("/memo/session", operation_id="readSession")
async def read_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> wire.Memo:
    """The session the bearer token names, and its note."""
    session = await _session(request, ctx)
    rows = await ctx.storage.read(notes.of(session))
    note = rows[0].note if rows else ""
    return wire.Memo(id=session.id, subject=session.subject or "", note=note, expires_at=session.expires_at)


@delete("/memo/session", operation_id="endSession", status_code=204)
async def end_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Response[None]:
    """End the session the bearer token names, and forget its note."""
    session = await _session(request, ctx)
    # The note is forgotten in the revoke's own transaction: the session ends with its note gone, or neither.
    await ctx.sessions.revoke(
        session.id, tenant=session.tenant, actor="user", also_write=lambda ended: [notes.forget(ended)]
    )
    return Response(content=None, status_code=204)


async def _session(request: Request[Any, Any, Any], ctx: Context) -> models.Session:
    if (token := bearer_token(request)) is None:
        raise Unauthenticated("a bearer token is required")
    return await ctx.sessions.resolve_secret(token, ctx.policy, tenant=ctx.options.tenant, dialect=ctx.dialect.name)
