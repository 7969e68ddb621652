"""PORTOS's routes: log in to a device, profile, refresh, log out (S2); list, read and delete sessions (S1)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter

from sessiongate.dialect import (
    AccountDisabled,
    NotFound,
    Unauthenticated,
    bearer_token,
    client_address,
    json_body,
)
from sessiongate.dialect import models as core
from sessiongate_portos import mapping, ndata, wire
from sessiongate_portos.context import PortosContext as Context
from sessiongate_portos.devices import Devices, RegisteredDevice

__all__ = ("Caller", "authenticate", "list_sessions", "login", "logout", "profile", "refresh", "session_routes")

ADMIN = "admin"
REPLACE_ATTEMPTS = 5
Filter = list[str] | None


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The principal behind a request's bearer token, and the session the token names."""

    principal: core.Principal
    session: core.Session

    @property
    def sees_all(self) -> bool:
        """Admins see every session of the tenant; anyone else only their own."""
        return ADMIN in self.principal.roles


@post("/api/auth", operation_id="login", status_code=200, tags=["portos"])
async def login(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> wire.AuthResult:
    """Log a user in to a device: a JWT (``tokenId``), a refresh token, the user and the device."""
    body = mapping.bind(await json_body(request, dict[str, Any]), wire.Login)
    tenant, address = ctx.options.tenant, client_address(request, trust_forwarded=ctx.settings.trust_forwarded)
    principal = await ctx.identity.authenticate_password(
        tenant=tenant, login=body.user_name, password=body.password or "", client_address=address
    )
    device = await _device(ctx.devices, tenant, body.device_name)
    new = mapping.session_in(principal, device, tenant=tenant, client_address=address)
    session, refresh_token = await _open(ctx, new)
    return mapping.auth_out(ctx.sessions.issue_jwt(session, mapping.claims(session)), refresh_token, principal, device)


@get("/api/auth", operation_id="getProfile", tags=["portos"])
async def profile(caller: NamedDependency[Caller], ctx: NamedDependency[Context]) -> wire.UserProfileContext:
    """The user and device of the caller's login."""
    return mapping.profile_out(caller.principal, await _login_device(ctx.devices, caller.session))


@post("/api/auth/refresh", operation_id="refreshToken", status_code=200, tags=["portos"])
async def refresh(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> wire.RefreshTokenResult:
    """Extend the session of ``tokenId`` and rotate both tokens (the refresh token is single-use)."""
    body = mapping.bind(await json_body(request, dict[str, Any]), wire.Refresh)
    sessions = ctx.sessions
    session = await _session_of(ctx, body.token_id)
    refreshed = await sessions.refresh(
        body.refresh_token,
        ctx.policy,
        grace=ctx.options.refresh_grace,
        session_id=session.id,
        mint=mapping.mint_refresh,
        seen=session,
    )
    token = sessions.issue_jwt(refreshed.session, mapping.claims(refreshed.session))
    return wire.RefreshTokenResult(
        token_id=token.value,
        refresh_token=refreshed.refresh_token,
        expires_at=mapping.timestamp(refreshed.session.expires_at),
    )


@delete("/api/auth", operation_id="logout", status_code=204, tags=["portos"])
async def logout(caller: NamedDependency[Caller], ctx: NamedDependency[Context]) -> None:
    """End the caller's session: its tokens stop working at once."""
    try:
        await ctx.sessions.revoke(caller.session.id, tenant=ctx.options.tenant, actor="user")
    except NotFound as exc:  # ended by a concurrent request since it was resolved
        raise Unauthenticated("session revoked") from exc


@get("/sessions", operation_id="listSessions", tags=["portos"])
async def list_sessions(
    *,
    caller: NamedDependency[Caller],
    ctx: NamedDependency[Context],
    skip: Annotated[str | None, QueryParameter(name="$skip")] = None,
    take: Annotated[str | None, QueryParameter(name="$take")] = None,
    sort: Annotated[list[str] | None, QueryParameter(name="$sort")] = None,
    count: Annotated[str | None, QueryParameter(name="$count")] = None,
    session_id: Annotated[Filter, QueryParameter(name="sessionId")] = None,
    user_name: Annotated[Filter, QueryParameter(name="identity.userName")] = None,
    device_name: Annotated[Filter, QueryParameter(name="identity.deviceName")] = None,
    env_name: Annotated[Filter, QueryParameter(name="identity.envName")] = None,
    authentication_type: Annotated[Filter, QueryParameter(name="identity.authenticationType")] = None,
    started_at: Annotated[Filter, QueryParameter(name="startedAt")] = None,
    expires_at: Annotated[Filter, QueryParameter(name="expiresAt")] = None,
    last_access_at: Annotated[Filter, QueryParameter(name="lastAccessAt")] = None,
    version: Annotated[Filter, QueryParameter(name="_v")] = None,
) -> wire.QueryResult:
    """Sessions the caller may see (every session of the tenant, of every dialect, for an admin), with NData."""
    filters = [session_id, user_name, device_name, env_name, authentication_type, started_at, expires_at]
    filters += [last_access_at, version]
    raw = ndata.NData(skip, take, sort, count, dict(zip([m.name for m in ndata.MEMBERS], filters, strict=True)))
    query = ndata.parse(raw, tenant=ctx.options.tenant, principal_id=_scope(caller))
    page = await ctx.sessions.list(query)
    logins = await _logins(ctx, page.items)
    return mapping.page_out(page, logins, count_only=query.count_only)


def session_routes(prefix: str, suffix: str = "") -> list[HTTPRouteHandler]:
    """``GET`` and ``DELETE`` of one session under ``prefix`` (the seed's ``/sessions``, or the ``/api`` alias)."""

    @get(f"{prefix}/{{id:str}}", operation_id=f"getSession{suffix}", tags=["portos"])
    async def get_session(
        id: FromPath[str],  # noqa: A002 - S1 names the path parameter "id"
        caller: NamedDependency[Caller],
        ctx: NamedDependency[Context],
    ) -> wire.Session:
        """One session the caller may see."""
        return await _out(ctx, await _visible(ctx, caller, id))

    @delete(f"{prefix}/{{id:str}}", operation_id=f"deleteSession{suffix}", status_code=200, tags=["portos"])
    async def delete_session(
        id: FromPath[str],  # noqa: A002 - S1 names the path parameter "id"
        caller: NamedDependency[Caller],
        ctx: NamedDependency[Context],
    ) -> wire.Session:
        """End a session (in whichever dialect made it); the deleted session comes back."""
        session = await _visible(ctx, caller, id)
        return await _out(ctx, await ctx.sessions.revoke(session.id, tenant=ctx.options.tenant, actor="user"))

    return [get_session, delete_session]


async def authenticate(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Caller:
    """The ``caller`` dependency: ``Authorization: Bearer <tokenId>`` of a live PORTOS session, else 401.

    Raises:
        Unauthenticated: no token, a bad or expired one, or its session is over or its user gone.
        AccountDisabled: the user was disabled.
    """
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("missing bearer token")
    tenant = ctx.options.tenant
    session, _ = await ctx.sessions.resolve_jwt(token, ctx.policy, session_claim="sid", tenant=tenant, dialect="portos")
    principal = await ctx.identity.get(tenant=tenant, principal_id=session.principal_id or "")
    if principal is None:  # removed by an operator since the login
        raise Unauthenticated("user not found")
    if principal.disabled:
        raise AccountDisabled("account disabled")
    return Caller(principal=principal, session=session)


def _scope(caller: Caller) -> str | None:
    return None if caller.sees_all else caller.principal.id


async def _device(devices: Devices, tenant: str, name: str) -> RegisteredDevice:
    try:
        return await devices.get(tenant=tenant, name=name)
    except NotFound as exc:
        raise mapping.ValidationFailed([("DeviceName", f"Device {name!r} does not exist.", "NotFound")]) from exc


async def _login_device(devices: Devices, session: core.Session) -> RegisteredDevice:
    try:
        return await devices.get(tenant=session.tenant, name=session.device.name or "")
    except NotFound:  # removed since the login: describe it from the session
        return RegisteredDevice(
            id=session.device.id or "",
            tenant=session.tenant,
            name=session.device.name or "",
            env=session.device.env or "",
            description=None,
            preferences={},
            settings={},
            created_at=session.created_at,
        )


async def _open(ctx: Context, new: core.NewSession) -> tuple[core.Session, str]:
    """A new session and its first refresh token; on a sale device the device's live session ends (S7)."""
    sessions = ctx.sessions
    session = await _exclusive(ctx, new)
    try:
        token = await sessions.issue_refresh(session, mint=mapping.mint_refresh)
    except Exception:
        # No half-made login: without its token, end it (the gateway did, recorded as such).
        await sessions.revoke(session.id, tenant=session.tenant, actor="gateway")
        raise
    return session, token


async def _exclusive(ctx: Context, new: core.NewSession) -> core.Session:
    sessions, policy = ctx.sessions, ctx.policy
    if new.reuse_key is None:
        return (await sessions.create(new, policy)).session
    for _ in range(REPLACE_ATTEMPTS):
        created = await sessions.replace(new, policy)
        if not created.reused:  # a concurrent login took the key between our revoke and insert: end it too
            return created.session
    raise mapping.ValidationFailed([("DeviceName", "The device is busy; try again.", "Busy")])


async def _session_of(ctx: Context, token_id: str) -> core.Session:
    """The live PORTOS session a ``tokenId`` names (without touching it)."""
    sessions = ctx.sessions
    claims = await sessions.keys.verify(token_id, now=sessions.now())
    sid = claims.get("sid")
    try:
        session = await sessions.get(sid if isinstance(sid, str) else "", tenant=ctx.options.tenant)
    except NotFound as exc:
        raise Unauthenticated("session not found") from exc
    if session.dialect != "portos":
        raise Unauthenticated("invalid token")
    return session


async def _visible(ctx: Context, caller: Caller, session_id: str) -> core.Session:
    """The session, if the caller may see it; another principal's session does not exist for them (404)."""
    session = await ctx.sessions.get(session_id, tenant=ctx.options.tenant)
    if not caller.sees_all and session.principal_id != caller.principal.id:
        raise NotFound("session not found")
    return session


async def _out(ctx: Context, session: core.Session) -> wire.Session:
    logins = await _logins(ctx, [session])
    return mapping.session_out(session, login=logins.get(session.principal_id or ""))


async def _logins(ctx: Context, items: list[core.Session]) -> dict[str, str]:
    """Logins of the principals of other dialects' sessions, by principal id: a session's subject need not be its
    user's name (amity's is an internal id). PORTOS's own sessions carry their login as their subject."""
    wanted = {s.principal_id for s in items if s.principal_id and (s.subject is None or s.dialect != "portos")}
    return await ctx.identity.logins(tenant=ctx.options.tenant, principal_ids=wanted)
