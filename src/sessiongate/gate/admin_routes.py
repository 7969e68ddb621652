"""The admin API's routes (``{prefix}/admin/…``): sessions of every dialect, listed, read and revoked.

Only a gateway API token of scope ``admin`` is let in (a guard, before any parameter is read): no token, or an unknown
or revoked one, is 401 with a challenge, an ``introspect`` token 403. No dialect's session is ever such a credential.
Every change is recorded as an audit event naming the token that made it before it is acknowledged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import PathParameter, QueryParameter

from sessiongate.core.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from sessiongate.core.keyset import decode_cursor
from sessiongate.dialects.admin import CALLER_KEY, Q, answer, caller, caller_event, page_size, text_filter
from sessiongate.dialects.base import bearer_token
from sessiongate.dialects.bodies import json_body
from sessiongate.dialects.responses import Response
from sessiongate.gate import admin
from sessiongate.gate.tokens import SCOPES, ApiTokens
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditFilter, AuditLog

# What every admin route shares, the dialects' included (``DialectPlugin.admin_controllers``), is in
# ``sessiongate.dialects.admin``; the gateway's own route modules import it from here as before.
__all__ = (
    "CALLER_KEY",
    "admin_guard",
    "answer",
    "caller",
    "caller_event",
    "handlers",
    "instant",
    "page_size",
    "services_of",
    "text_filter",
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sessiongate"'}


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Let in only a live API token of scope ``admin``.

    Raises:
        Unauthenticated: no token, or an unknown or revoked one.
        Forbidden: a token of another scope.
    """
    if connection.scope.get("method") == "OPTIONS":  # Litestar's answer listing the methods, which reads nothing
        return
    services: Services = connection.app.state.services
    token = bearer_token(connection)  # type: ignore[arg-type]  # reads only the headers a connection has too
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    info = await tokens.authenticate(token, SCOPES) if token is not None else None
    if info is None:
        raise Unauthenticated("an admin API token is required (Authorization: Bearer)", headers=dict(CHALLENGE))
    if info.scope != "admin":
        raise Forbidden("this API token's scope does not reach the admin API")
    connection.state[CALLER_KEY] = info


def services_of(request: Request[Any, Any, Any]) -> Services:
    """The process's services."""
    services: Services = request.app.state.services
    return services


@get("/admin/sessions", operation_id="listSessions", status_code=200)
async def list_sessions(
    request: Request[Any, Any, Any],
    *,
    tenant: Q = None,
    dialect: Q = None,
    principal_id: Q = None,
    device_id: Q = None,
    client_address: Q = None,
    created_after: Q = None,
    created_before: Q = None,
    last_seen_after: Q = None,
    last_seen_before: Q = None,
    lifecycle: Annotated[str | None, QueryParameter(name="state")] = None,  # "state" is a name Litestar keeps
    limit: Q = None,
    cursor: Q = None,
) -> Response[bytes]:
    """Sessions of every dialect and tenant, newest first, filtered, one page at a time (keyset)."""
    texts = {
        "tenant": tenant,
        "dialect": dialect,
        "principal_id": principal_id,
        "device_id": device_id,
        "client_address": client_address,
    }
    for name, value in texts.items():
        text_filter(name, value)
    if lifecycle is not None and lifecycle not in admin.STATES:
        raise InvalidRequest(f"state must be one of {', '.join(admin.STATES)}", field="state")
    where = admin.SessionsFilter(
        tenant=tenant,
        dialect=dialect,
        principal_id=principal_id,
        device_id=device_id,
        client_address=client_address,
        created_after=instant("created_after", created_after),
        created_before=instant("created_before", created_before),
        last_seen_after=instant("last_seen_after", last_seen_after),
        last_seen_before=instant("last_seen_before", last_seen_before),
        state=lifecycle,  # checked against STATES above
    )
    after = decode_cursor(cursor) if cursor is not None else None
    page = await admin.list_sessions(services_of(request), where, limit=page_size(limit, admin.MAX_LIMIT), after=after)
    return answer(page)


@get("/admin/sessions/{session_id:str}", operation_id="getSession", status_code=200)
async def get_session(request: Request[Any, Any, Any], session_id: Annotated[str, PathParameter()]) -> Response[bytes]:
    """One session of any dialect, live, revoked or expired, until the sweeper deletes it."""
    services = services_of(request)
    session = await services.sessions.store.by_id(session_id)
    if session is None:
        raise NotFound("no such session", field="session_id")
    return answer(admin.view(session, services.clock()))


@post("/admin/sessions/{session_id:str}/revoke", operation_id="revokeSession", status_code=200)
async def revoke_session(
    request: Request[Any, Any, Any], session_id: Annotated[str, PathParameter()]
) -> Response[bytes]:
    """End one session; every dialect refuses it from the next request on. Again: nothing changes, 200."""
    services = services_of(request)
    session, _ = await admin.revoke_session(services, caller_event(request), session_id)
    return answer(admin.view(session, services.clock()))


class RevokePrincipal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whose sessions to end, and which one of them to keep."""

    principal_id: str
    tenant: str = "default"
    except_session_id: str | None = None


class Revoked(msgspec.Struct, frozen=True, kw_only=True):
    """How many live sessions a revoke ended."""

    revoked: int


@post("/admin/revoke-principal-sessions", operation_id="revokePrincipalSessions", status_code=200)
async def revoke_principal_sessions(request: Request[Any, Any, Any]) -> Response[bytes]:
    """End every live session of a principal in every dialect, but the one named to keep; again: 0 ended."""
    services = services_of(request)
    body = await json_body(request, RevokePrincipal)
    text_filter("principal_id", body.principal_id)
    text_filter("tenant", body.tenant)
    count = await admin.revoke_principal_sessions(
        services,
        caller_event(request),
        tenant=body.tenant,
        principal_id=body.principal_id,
        except_session_id=body.except_session_id,
    )
    return answer(Revoked(revoked=count))


@get("/admin/audit-events", operation_id="listAuditEvents", status_code=200)
async def list_audit_events(
    request: Request[Any, Any, Any],
    *,
    kind: Q = None,
    actor: Q = None,
    tenant: Q = None,
    dialect: Q = None,
    principal_id: Q = None,
    session_id: Q = None,
    after: Q = None,
    before: Q = None,
    limit: Q = None,
    cursor: Q = None,
) -> Response[bytes]:
    """Audit events, newest first, filtered, one page at a time (keyset)."""
    texts = {
        "kind": kind,
        "actor": actor,
        "tenant": tenant,
        "dialect": dialect,
        "principal_id": principal_id,
        "session_id": session_id,
    }
    for name, value in texts.items():
        text_filter(name, value)
    where = AuditFilter(
        kind=kind,
        actor=actor,
        tenant=tenant,
        dialect=dialect,
        principal_id=principal_id,
        session_id=session_id,
        after=instant("after", after),
        before=instant("before", before),
    )
    services = services_of(request)
    page = await AuditLog(services.runner, services.clock).list(
        where,
        limit=page_size(limit, admin.MAX_LIMIT),
        after=decode_cursor(cursor) if cursor is not None else None,
    )
    return answer(page)


def instant(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 date-time with its offset.

    Raises:
        InvalidRequest: anything else.
    """
    if value is None:
        return None
    text = value.upper()  # RFC 3339 5.6 allows "t" and "z"
    try:
        moment = datetime.fromisoformat(text) if text.isascii() and "T" in text else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(f"{name} must be an RFC 3339 date-time with an offset", field=name)
    try:
        # Stored and compared in UTC: 9999-12-31T23:59:59-14:00 is past the last instant a datetime holds there.
        moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} must be in years 1 to 9999 in UTC", field=name) from None
    return moment


handlers = [list_sessions, get_session, revoke_session, revoke_principal_sessions, list_audit_events]
"""The admin API's handlers, mounted under the gateway's prefix with :func:`admin_guard`."""
