"""SAYMON's session routes: log in, who am I, verify a session id, log out."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import FromPath

from sessiongate.dialect import (
    AccountDisabled,
    DialectContext,
    InvalidRequest,
    NotFound,
    Response,
    Unauthenticated,
    bearer_token,
    client_address,
    cookie_is_secure,
    expired_cookie,
    json_body,
    refuse_cross_site,
    request_cookie,
    set_cookie,
)
from sessiongate.dialect import models as core
from sessiongate_saymon import mapping, wire
from sessiongate_saymon.options import SaymonOptions

__all__ = (
    "Caller",
    "authenticate",
    "cookie_session",
    "create_session",
    "current_user",
    "delete_session",
    "verify_session",
)

Context = DialectContext[SaymonOptions]

COOKIE = "sid"
FORM = "application/x-www-form-urlencoded"


class _EmptyResponse(Response[bytes]):
    """An empty body without ``Content-Type``, as restify's ``res.send()`` without a body answers (S2's logout).

    Litestar names a media type for every response that may have a body; this one names none.
    """

    names_media_type = False


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, and through which session (``None`` for Basic auth, which opens none)."""

    principal: core.Principal
    session: core.Session | None


# Log in and log out set and clear the sid cookie, so another site's page may do neither (decision 17).
@post(
    "/node/api/users/session",
    operation_id="createSession",
    status_code=200,
    tags=["saymon"],
    guards=[refuse_cross_site],
)
async def create_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Response[bytes]:
    """Log in with login and password, or an auth token; the new session id comes back quoted and as a cookie."""
    credentials = mapping.credentials_in(await _create_body(request))
    address, tenant = client_address(request, trust_forwarded=ctx.settings.trust_forwarded), ctx.options.tenant
    principal, scheme = await _login(ctx, credentials, client_address=address)
    new = mapping.create_in(principal, tenant=tenant, client_address=address, scheme=scheme)
    created = await ctx.sessions.create(new, ctx.policy, with_secret=True)
    secret, session = created.secret or "", created.session
    # Decision 4: the cookie lasts until the session's absolute end, the latest it can still be used; the idle
    # timeout may end the session sooner, which the server decides (the cookie is not sent again on each use).
    cookie = set_cookie(
        COOKIE,
        secret,
        expires_at=session.absolute_expires_at,
        now=session.created_at,
        secure=cookie_is_secure(request, ctx.settings),
    )
    return Response(msgspec.json.encode(secret), media_type=MediaType.JSON, headers={"Set-Cookie": cookie})


@get("/node/api/users/current", operation_id="getCurrentUser", tags=["saymon"])
async def current_user(caller: NamedDependency[Caller]) -> wire.User:
    """The logged-in user (session cookie, ``X-Session-Id`` or Basic auth)."""
    return mapping.user_out(caller.principal)


@get("/node/api/users/session/verify/{sid:str}", operation_id="verifySession", tags=["saymon"])
async def verify_session(
    sid: FromPath[str], caller: NamedDependency[Caller], ctx: NamedDependency[Context]
) -> Response[bytes]:
    """``true`` when ``sid`` names a live session, else ``null``; the caller must be logged in."""
    try:
        await _resolve(ctx, _unquote(sid))
    except Unauthenticated:
        return Response(b"null", media_type=MediaType.JSON)
    return Response(b"true", media_type=MediaType.JSON)


@delete(
    "/node/api/users/session",
    operation_id="deleteSession",
    status_code=200,
    tags=["saymon"],
    guards=[refuse_cross_site],
)
async def delete_session(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Response[bytes]:
    """Log out: end the session named by ``X-Session-Id`` (else the cookie) and clear the cookie."""
    if not (presented := await _presented_sessions(request, ctx)):
        raise Unauthenticated(mapping.NOT_LOGGED_IN)
    session = presented[0]
    try:
        await ctx.sessions.revoke(session.id, tenant=ctx.options.tenant, actor="user")
    except NotFound as exc:  # ended by a concurrent logout between resolve and revoke
        raise Unauthenticated(mapping.SESSION_EXPIRED) from exc
    cookie = expired_cookie(COOKIE, secure=cookie_is_secure(request, ctx.settings))
    return _EmptyResponse(b"", status_code=200, headers={"Set-Cookie": cookie})


async def authenticate(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Caller:
    """The ``caller`` dependency: every credential sent must hold; the session (header, then cookie) names the caller.

    Raises:
        Unauthenticated: in S7's wordings: no credential, or any one sent that does not hold.
        AccountDisabled: the session's principal was disabled.
    """
    presented = await _presented_sessions(request, ctx)
    basic = await _basic_principal(request, ctx)
    if presented:
        session = presented[0]
        principal = await ctx.identity.get(tenant=ctx.options.tenant, principal_id=session.principal_id or "")
        if principal is None:  # the user was removed; its sessions went with it
            raise Unauthenticated(mapping.SESSION_EXPIRED)
        if principal.disabled:
            raise AccountDisabled("account disabled")
        return Caller(principal=principal, session=session)
    if basic is None:
        raise Unauthenticated(mapping.NOT_LOGGED_IN)
    return Caller(principal=basic, session=None)


async def _presented_sessions(request: Request[Any, Any, Any], ctx: Context) -> list[core.Session]:
    # Fail closed: an id that does not hold is refused even beside one that does. The explicit header comes
    # before the ambient cookie; an emptied cookie (what logout leaves) counts as none.
    sids = [_unquote(request.headers.get("x-session-id", "")), _unquote(request_cookie(request, COOKIE) or "")]
    return [await _resolve(ctx, sid) for sid in sids if sid]


async def cookie_session(ctx: Context, cookie: str) -> core.Session | None:
    """The session a ``sid`` cookie names, used as the routes use it; ``None`` for no cookie or an emptied one."""
    sid = _unquote(cookie)
    return await _resolve(ctx, sid) if sid else None


async def _basic_principal(request: Request[Any, Any, Any], ctx: Context) -> core.Principal | None:
    if "authorization" not in request.headers:  # an empty one is sent, and does not hold
        return None
    address = client_address(request, trust_forwarded=ctx.settings.trust_forwarded)
    principal, _ = await _login(ctx, _basic_credentials(request), client_address=address)
    return principal


async def _login(
    ctx: Context, credentials: tuple[str, str] | str, *, client_address: str
) -> tuple[core.Principal, str]:
    identity, tenant = ctx.identity, ctx.options.tenant
    try:
        if isinstance(credentials, str):
            holder = await identity.authenticate_token(tenant=tenant, token=credentials, client_address=client_address)
            return holder, "auth-token"
        login, password = credentials
        if "\x00" in login:  # no login holds NUL (PostgreSQL text cannot), and asking would fail the query
            raise Unauthenticated(mapping.INVALID_CREDENTIALS)
        principal = await identity.authenticate_password(
            tenant=tenant, login=login, password=password, client_address=client_address
        )
        return principal, "password"
    except Unauthenticated as exc:
        raise Unauthenticated(
            mapping.INVALID_TOKEN if isinstance(credentials, str) else mapping.INVALID_CREDENTIALS
        ) from exc


async def _resolve(ctx: Context, sid: str) -> core.Session:
    try:
        return await ctx.sessions.resolve_secret(sid, ctx.policy, tenant=ctx.options.tenant, dialect="saymon")
    except Unauthenticated as exc:
        # S7: an id that "doesn't exist or was already deleted" is "Session expired.", as is a timed-out one.
        raise Unauthenticated(mapping.SESSION_EXPIRED) from exc


def _unquote(value: str) -> str:
    # S1 warns that the id comes back in quotes and clients may forget to strip them: accept it either way.
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _basic_credentials(request: Request[Any, Any, Any]) -> tuple[str, str]:
    # Only Basic is a credential here; any other Authorization value is one that does not hold.
    if (encoded := bearer_token(request, "Basic")) is None:
        raise Unauthenticated(mapping.INVALID_CREDENTIALS)
    try:
        login, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError as exc:  # not base64 (binascii.Error), not ASCII text to decode, not UTF-8 once decoded
        raise Unauthenticated(mapping.INVALID_CREDENTIALS) from exc
    if not colon or not login:
        raise Unauthenticated(mapping.INVALID_CREDENTIALS)
    return login, password


async def _create_body(request: Request[Any, Any, Any]) -> wire.CreateSession:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body.strip():
        return wire.CreateSession()  # no body is missing parameters, worded as such
    if media != FORM:
        return await json_body(request, wire.CreateSession)
    try:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("request body is not a valid form") from exc
    return msgspec.convert(fields, wire.CreateSession)
