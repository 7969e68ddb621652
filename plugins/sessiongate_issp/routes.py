"""The ISSP dashboard's three session routes, each served with the seed's verb (POST) and the real server's."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency

from sessiongate.dialect import (
    AccountDisabled,
    DialectContext,
    InvalidRequest,
    NotFound,
    Response,
    SessionExpired,
    Unauthenticated,
    client_address,
    cookie_is_secure,
    expired_cookie,
    json_body,
    refuse_cross_site,
    request_cookie,
    request_host_name,
    set_cookie,
    within_create_budget,
)
from sessiongate.dialect import models as core
from sessiongate_issp import mapping, wire
from sessiongate_issp.options import IsspOptions

__all__ = (
    "COOKIE",
    "create_session",
    "delete_session",
    "delete_session_with_delete",
    "resolve_cookie",
    "validate_session",
    "validate_session_with_get",
)

Context = DialectContext[IsspOptions]

COOKIE = "sessionCookie"
CREATE, VALIDATE, DELETE = "/api/session/createSession", "/api/session/validateSession", "/api/session/deleteSession"


# Create and delete change what the browser's cookie names, so another site's page may do neither (decision 18).
@post(
    CREATE,
    operation_id="createSession",
    status_code=200,
    tags=["issp"],
    guards=[refuse_cross_site],
    before_request=within_create_budget,
)
async def create_session(
    request: Request[Any, Any, Any], ctx: NamedDependency[Context]
) -> Response[wire.CreateSessionResponse]:
    """Open a session for a known user id; the new session id comes back in the body and as ``sessionCookie``."""
    now = ctx.sessions.now()  # before the write, so Max-Age is never a second short of the lifetime
    user = await _user(ctx, mapping.user_id_in(await _create_body(request)))
    await _end_presented(request, ctx)
    address = client_address(request, trust_forwarded=ctx.settings.trust_forwarded)
    new = mapping.create_in(user, tenant=ctx.options.tenant, client_address=address)
    created = await ctx.sessions.create(new, ctx.policy, with_secret=True)
    secret, session = created.secret or "", created.session
    cookie = _cookie(request, ctx, secret=secret, session=session, now=now)
    return Response(mapping.created_out(session, secret), headers={"Set-Cookie": cookie})


async def validate(
    request: Request[Any, Any, Any], ctx: NamedDependency[Context]
) -> Response[wire.ValidateSessionResponse]:
    """Check the cookie's session and slide it by the lifetime; the cookie comes back with the new expiry.

    One indexed SELECT, and an UPDATE at most once per touch interval: the user's e-mail and role were kept on the
    session when it was created, and disabling a user ends its sessions.
    """
    now = ctx.sessions.now()
    secret = mapping.cookie_in(request_cookie(request, COOKIE), now=now)
    session = await _resolve(ctx, secret, ctx.policy)
    cookie = _cookie(request, ctx, secret=secret, session=session, now=now)
    return Response(mapping.validated_out(session), headers={"Set-Cookie": cookie})


async def end(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Response[wire.Message]:
    """End the cookie's session and expire the cookie. The cookie's own ``expires`` is not checked (as the vendor)."""
    secret = mapping.cookie_in(request_cookie(request, COOKIE), now=None)
    try:
        session = await _resolve(ctx, secret, _no_touch(ctx))
        await ctx.sessions.revoke(session.id, tenant=ctx.options.tenant, actor="user")
    except SessionExpired:
        pass  # the vendor deleted an outlived row too; the sweeper removes it
    except NotFound as exc:  # ended by a concurrent delete between resolve and revoke
        raise Unauthenticated("session ended") from exc
    cookie = _cookie(request, ctx)
    return Response(wire.Message(message=mapping.SESSION_DELETED), headers={"Set-Cookie": cookie})


validate_session = post(VALIDATE, operation_id="validateSession", status_code=200, tags=["issp"])(validate)
validate_session_with_get = get(VALIDATE, operation_id="validateSessionWithGet", tags=["issp"])(validate)
delete_session = post(DELETE, operation_id="deleteSession", status_code=200, tags=["issp"], guards=[refuse_cross_site])(
    end
)
delete_session_with_delete = delete(
    DELETE, operation_id="deleteSessionWithDelete", status_code=200, tags=["issp"], guards=[refuse_cross_site]
)(end)


async def resolve_cookie(ctx: Context, raw: str) -> core.Session:
    """The session a ``sessionCookie`` names, checked and slid exactly as validate does (the gateway's forward auth)."""
    return await _resolve(ctx, mapping.cookie_in(raw, now=ctx.sessions.now()), ctx.policy)


async def _create_body(request: Request[Any, Any, Any]) -> wire.CreateSession:
    if not (await request.body()).strip():
        return wire.CreateSession()  # no body has no user id in it: the seed's first message, not a parse error
    return await json_body(request, wire.CreateSession)


async def _user(ctx: Context, user_id: str) -> core.Principal:
    # PostgreSQL text cannot hold NUL, so no user has such an id, and asking would fail the query.
    user = None if "\x00" in user_id else await ctx.identity.get(tenant=ctx.options.tenant, principal_id=user_id)
    if user is None:
        raise NotFound("unknown user")
    if user.disabled:
        raise AccountDisabled("account disabled")
    return user


async def _resolve(ctx: Context, secret: str, policy: core.ExpiryPolicy) -> core.Session:
    return await ctx.sessions.resolve_secret(secret, policy, tenant=ctx.options.tenant, dialect="issp")


async def _end_presented(request: Request[Any, Any, Any], ctx: Context) -> None:
    # Create overwrites the caller's cookie, so the session it named can no longer be reached: end it, as the
    # vendor's delete-then-insert did. A cookie that names nothing live is no reason to refuse a create.
    with contextlib.suppress(InvalidRequest, Unauthenticated, NotFound):
        secret = mapping.cookie_in(request_cookie(request, COOKIE), now=None)
        session = await _resolve(ctx, secret, _no_touch(ctx))
        await ctx.sessions.revoke(session.id, tenant=ctx.options.tenant, actor="user")


def _no_touch(ctx: Context) -> core.ExpiryPolicy:
    # No point sliding (an UPDATE) a session that is about to end.
    return msgspec.structs.replace(ctx.policy, touch_interval=float("inf"))


def _cookie(
    request: Request[Any, Any, Any],
    ctx: Context,
    *,
    secret: str = "",
    session: core.Session | None = None,
    now: datetime | None = None,
) -> str:
    # The cookie for a live session; without one, the expired form that makes the client drop it.
    options = ctx.options
    domain = options.cookie_domain or request_host_name(request)
    # Browsers drop SameSite=None cookies that are not Secure, so that choice implies Secure.
    secure = cookie_is_secure(request, ctx.settings) or options.same_site == "None"
    attributes: dict[str, Any] = {"secure": secure, "domain": options.cookie_domain, "same_site": options.same_site}
    if session is None or now is None:
        return expired_cookie(COOKIE, mapping.cookie_out("", expires_at=None, domain=domain), **attributes)
    value = mapping.cookie_out(secret, expires_at=session.expires_at, domain=domain)
    return set_cookie(COOKIE, value, expires_at=session.expires_at, now=now, **attributes)
