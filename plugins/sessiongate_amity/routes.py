"""Amity's session routes: register (three versions), verify, revoke, the chat settings read, auth tokens."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter

from sessiongate.dialect import (
    NETWORK_REALM,
    AccountDisabled,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Response,
    SessionService,
    Tenant,
    Unauthenticated,
    bearer_token,
    client_address,
    json_body,
    new_secret,
    within_create_budget,
)
from sessiongate.dialect import models as core
from sessiongate_amity import mapping, wire
from sessiongate_amity.context import AmityContext as Context
from sessiongate_amity.options import AmityOptions

__all__ = (
    "Caller",
    "Credential",
    "authenticate",
    "chat_settings",
    "credential",
    "network",
    "register_route",
    "revoke_session",
    "revoke_user_sessions",
    "server_network",
    "token_v3",
    "token_v4",
    "use_interval",
    "verify_session",
)

TAGS = ["amity"]
# Query members are checked here, not by Litestar, so that failures name them as the client spelled them.
UserIdQuery = Annotated[str | None, QueryParameter(name="userId")]
IsPublic = Annotated[str | None, QueryParameter(name="isPublic")]


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The session an access token names; its tenant is the network the request is in."""

    session: core.Session


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    """Who calls a revoke route: a user, by its access token, or the network's backend, by its admin token."""

    session: core.Session | None = None
    admin_of: Tenant | None = None


def register_route(version: int) -> HTTPRouteHandler:
    """``POST /api/v{version}/sessions``: the same contract in v3 (deprecated), v4 and v5 (what the SDK calls)."""

    @post(
        f"/api/v{version}/sessions",
        operation_id=f"registerSessionV{version}",
        status_code=200,
        tags=TAGS,
        deprecated=version == 3,
        before_request=within_create_budget,
    )
    async def register(
        request: Request[Any, Any, Any],
        network: NamedDependency[Tenant],
        ctx: NamedDependency[Context],
    ) -> wire.Session:
        """Register a device session for a user (created on first sight); with the current token, a renewal."""
        return await _register(request, network, ctx)

    return register


@get("/api/v3/sessions", operation_id="verifySession", tags=TAGS)
async def verify_session(caller: NamedDependency[Caller], ctx: NamedDependency[Context]) -> wire.Verified:
    """200 while the access token is valid."""
    return wire.Verified(last_cache_purge=mapping.iso(ctx.options.last_cache_purge))


@delete("/api/v4/sessions", operation_id="revokeSession", status_code=200, tags=TAGS)
async def revoke_session(
    request: Request[Any, Any, Any],
    *,
    credential: NamedDependency[Credential],
    ctx: NamedDependency[Context],
    user_id: UserIdQuery = None,
    is_public: IsPublic = None,
) -> wire.Success:
    """Revoke the caller's own token; with ``userId`` (query, or S6's JSON body), the network's admin token revokes
    every token of that user."""
    public = _flag(is_public, "isPublic")
    target = await _target(request, None if user_id is None else _text(user_id, "userId", 50))
    if target is not None:
        await _revoke_all(credential, ctx, target, public)
    elif credential.session is None:  # an admin token is no session: it has no token of its own to end
        raise InvalidRequest("userId is required", field="userId")
    else:
        await _log_out(ctx.sessions, credential.session)
    return wire.Success(success=True)


@delete("/api/v4/sessions/users/{userId:str}", operation_id="revokeUserSessions", status_code=200, tags=TAGS)
async def revoke_user_sessions(
    userId: FromPath[str],  # noqa: N803 - S2 names the path parameter "userId"
    credential: NamedDependency[Credential],
    ctx: NamedDependency[Context],
    is_public: IsPublic = None,
) -> wire.Success:
    """The network's admin token revokes every token of a user."""
    public = _flag(is_public, "isPublic")
    await _revoke_all(credential, ctx, _text(userId, "userId", 50), public)
    return wire.Success(success=True)


@get("/api/v3/network-settings/chat", operation_id="getChatSettings", tags=TAGS)
async def chat_settings(caller: NamedDependency[Caller]) -> wire.ChatSettings:
    """The network's chat settings, which the TypeScript SDK's login waits for."""
    return mapping.CHAT_SETTINGS


@post("/api/v4/authentication/token", operation_id="createAuthToken", status_code=200, tags=TAGS)
async def token_v4(
    request: Request[Any, Any, Any],
    server_network: NamedDependency[Tenant],
    ctx: NamedDependency[Context],
) -> Response[str]:
    """A single-use auth token for one user of a secure network, as ``text/plain``."""
    body = await json_body(request, wire.TokenRequest)
    token = await ctx.tenants.issue_auth_token(server_network, body.user_id)
    return Response(token.value, media_type=MediaType.TEXT)


@get("/api/v3/authentication/token", operation_id="getAuthToken", tags=TAGS)
async def token_v3(
    server_network: NamedDependency[Tenant],
    ctx: NamedDependency[Context],
    user_id: UserIdQuery = None,
) -> Response[bytes]:
    """The same, as a JSON string (S2's v3 response)."""
    token = await ctx.tenants.issue_auth_token(server_network, _text(user_id, "userId", 100))
    return Response(msgspec.json.encode(token.value), media_type=MediaType.JSON)


async def network(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Tenant:
    """The ``network`` dependency: the tenant whose API key ``x-api-key`` carries (any header casing).

    Raises:
        Unauthenticated: no key, or one no tenant holds.
    """
    found = await ctx.tenants.by_key(request.headers.get("x-api-key", ""), "api")
    if found is None:
        raise Unauthenticated("invalid api key")
    return found


async def server_network(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Tenant:
    """The ``server_network`` dependency: the secure tenant whose server key ``x-server-key`` carries.

    Raises:
        Unauthenticated: no key, or one no tenant holds (answered ``text/plain`` ``Unauthorized``, as S2 shows).
    """
    found = await ctx.tenants.by_key(request.headers.get("x-server-key", ""), "server")
    if found is None:
        raise Unauthenticated("invalid server key")
    return found


async def authenticate(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Caller:
    """The ``caller`` dependency: the live session of the bearer token, in the network of ``x-api-key`` if sent.

    The SDK sends its API key only when registering, so without one the token's own network is the request's.

    Raises:
        Unauthenticated: no token, a bad, expired or revoked one, or one of another network than the key's.
    """
    if (token := bearer_token(request)) is None:
        raise Unauthenticated("missing access token")
    tenant = None
    if "x-api-key" in request.headers:
        tenant = (await network(request, ctx)).name
    session, _ = await ctx.sessions.resolve_jwt(token, ctx.policy, session_claim="sid", tenant=tenant, dialect="amity")
    return Caller(session=session)


async def credential(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Credential:
    """The ``credential`` dependency of the revoke routes: ``x-admin-token`` (S6), else the bearer token, which is a
    user's access token (a JWT) or the network's admin token (S2 sends that as a bearer too).

    Raises:
        Unauthenticated: no credential, an unknown admin token, a bad, expired or revoked access token, or either
            of another network than ``x-api-key``'s.
    """
    if (admin := request.headers.get("x-admin-token")) is not None:
        return Credential(admin_of=await _admin_network(request, ctx, admin))
    token = bearer_token(request)
    if token is not None and token.count(".") != 2:  # a JWT has three parts; an admin token has no dot (new_key)
        return Credential(admin_of=await _admin_network(request, ctx, token))
    return Credential(session=(await authenticate(request, ctx)).session)


async def _admin_network(request: Request[Any, Any, Any], ctx: Context, token: str) -> Tenant:
    found = await ctx.tenants.by_key(token, "admin")
    if found is None:
        raise Unauthenticated("invalid admin token")
    if "x-api-key" in request.headers and (await network(request, ctx)).name != found.name:
        raise Unauthenticated("admin token of another network")
    return found


async def _register(request: Request[Any, Any, Any], network: Tenant, ctx: Context) -> wire.Session:
    body = await json_body(request, wire.RegisterSession)
    sessions, options = ctx.sessions, ctx.options
    renewed = await _renewed(request, ctx, network, body.user_id)
    await _check_auth_token(ctx, network, body)
    principal = await _user(ctx, network.name, body)
    if principal.disabled:
        raise AccountDisabled("account disabled")
    principal = await ctx.identity.record_use(principal, every=use_interval(options))  # for the sweep
    refresh = new_secret()  # amity publishes no way to redeem it: only its digest is kept (spec decision 7)
    new = mapping.register_in(
        body,
        tenant=network.name,
        client_address=client_address(request, trust_forwarded=ctx.settings.trust_forwarded),
        refresh_digest=sessions.digester.digest(refresh),
        renewed_from=renewed.id if renewed is not None else None,
    )
    # A token renewed from another device ends within the grace period: the session cap does not count it.
    moved = renewed is not None and renewed.device.id != body.device_id
    spared = (renewed.id,) if renewed is not None and moved else ()
    created = await sessions.hand_over(new, ctx.policy, grace=options.renewal_grace, spared=spared)
    if renewed is not None and moved:
        with contextlib.suppress(NotFound):  # ended meanwhile: nothing left to shorten
            await sessions.shorten(renewed.id, tenant=network.name, within=options.renewal_grace)
    token = sessions.issue_jwt(created.session, mapping.claims(created.session), issued_at=created.token_issued_at)
    return mapping.session_out(created.session, token, refresh, principal, options.last_cache_purge)


def use_interval(options: AmityOptions) -> timedelta:
    """How often a user's registrations are recorded as uses: daily, or every token lifetime when that is shorter."""
    return timedelta(seconds=min(86400, options.lifetime))


def _text(value: str | None, name: str, longest: int) -> str:
    if value is None:
        raise InvalidRequest(f"{name} is required", field=name)
    if not 1 <= len(value) <= longest or "\x00" in value:
        raise InvalidRequest(f"{name} must be 1 to {longest} characters, none of them NUL", field=name)
    return value


def _flag(value: str | None, name: str) -> bool:
    # Any letter case (spec decision 22): .NET clients write booleans as bool.ToString() does, "True" and "False".
    if value is None:
        return True
    word = value.lower() if value.isascii() else ""
    if word not in {"true", "false"}:
        raise InvalidRequest(f"{name} must be true or false", field=name)
    return word == "true"


async def _renewed(request: Request[Any, Any, Any], ctx: Context, network: Tenant, user_id: str) -> core.Session | None:
    # A registration carrying the current token renews it; a token that is not the same user's live one is refused.
    if (token := bearer_token(request)) is None:
        return None
    session, _ = await ctx.sessions.resolve_jwt(
        token, ctx.policy, session_claim="sid", tenant=network.name, dialect="amity"
    )
    if session.principal_id != user_id:
        raise Unauthenticated("access token of another user")
    return session


async def _user(ctx: Context, tenant: str, body: wire.RegisterSession) -> core.Principal:
    # Most registrations are a known user signing in again: a read then, a write only to create or rename. A network's
    # users are its own (spec decision 21): an id or login an operator's principal holds is never amity's to reach.
    display = None if isinstance(body.display_name, msgspec.UnsetType) else body.display_name
    identity = ctx.identity
    known = await identity.get(tenant=tenant, principal_id=body.user_id)
    if known is not None and known.realm != NETWORK_REALM:
        raise _taken(body.user_id)
    if known is not None and display in {None, known.display_name}:
        return known
    try:
        principal, _ = await identity.upsert_principal(
            tenant=tenant, principal_id=body.user_id, display_name=display, realm=NETWORK_REALM
        )
    except Conflict as exc:
        raise _taken(body.user_id) from exc
    return principal


def _taken(user_id: str) -> Conflict:
    return Conflict(f"userId {user_id!r} belongs to another principal", field="userId")


async def _check_auth_token(ctx: Context, network: Tenant, body: wire.RegisterSession) -> None:
    # Only secure networks need one; elsewhere a given authToken is ignored, as the vendor documents it optional.
    if not network.secure:
        return
    token = None if isinstance(body.auth_token, msgspec.UnsetType) else body.auth_token
    if token is None or not await ctx.tenants.consume_auth_token(token, tenant=network.name, principal_id=body.user_id):
        raise Unauthenticated("invalid auth token")


async def _log_out(sessions: SessionService, session: core.Session) -> None:
    # The caller's token, and the user's earlier tokens on the device still in their grace period (spec decision 8):
    # they were kept for requests in flight, not to outlive the device's session.
    await sessions.revoke(session.id, tenant=session.tenant, actor="user")
    if session.principal_id is not None and session.device.id is not None:
        await sessions.revoke_all_for_principal(
            session.principal_id, tenant=session.tenant, dialect="amity", device_id=session.device.id, actor="user"
        )


async def _target(request: Request[Any, Any, Any], query: str | None) -> str | None:
    # S2 names the user in the query, S6 in a JSON body: either is read (the body is checked even when the query
    # names the user), and S2's query wins, S2 being the published API reference.
    if not (await request.body()).strip():
        return query
    body = await json_body(request, wire.RevokeRequest)
    return query if query is not None or isinstance(body.user_id, msgspec.UnsetType) else body.user_id


async def _revoke_all(credential: Credential, ctx: Context, user_id: str, is_public: bool) -> None:
    if credential.admin_of is None:  # a user's session, whatever roles its user has, is no admin credential
        raise Forbidden("only the network's admin token may revoke another user's tokens")
    tenant, sessions = credential.admin_of.name, ctx.sessions
    target = user_id if is_public else await _public_id(sessions, tenant, user_id)
    if target is None or await ctx.identity.get(tenant=tenant, principal_id=target, realm=NETWORK_REALM) is None:
        raise NotFound("user not found", field="userId")
    await sessions.revoke_all_for_principal(target, tenant=tenant, actor="network-admin")


async def _public_id(sessions: SessionService, tenant: str, internal: str) -> str | None:
    # isPublic=false names the user by its internal id, which amity sessions carry as their subject.
    query = core.SessionQuery(
        tenant=tenant,
        filters=(
            core.SessionFilter(field="dialect", op="eq", values=("amity",)),
            core.SessionFilter(field="subject", op="eq", values=(internal,)),
        ),
        page=core.PageRequest(take=1),
        with_total=False,
    )
    page = await sessions.list(query)
    return page.items[0].principal_id if page.items else None
