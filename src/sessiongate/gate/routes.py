"""The gateway's own routes: forward auth for reverse proxies, RFC 7662 introspection, RFC 7009 revocation.

Each handler takes only the request (the services are on the app's state): none of them needs the dialects'
dependency chain, and a handler with no dependencies resolves none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl, quote

import msgspec
from litestar import Request, post, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler

from sessiongate.core.errors import (
    Forbidden,
    GatewayError,
    InvalidRequest,
    NotFound,
    Unauthenticated,
    UnsupportedMediaType,
)
from sessiongate.core.models import Session
from sessiongate.dialects.base import DialectPlugin, bearer_token, client_address
from sessiongate.dialects.responses import Response
from sessiongate.gate import access, introspection
from sessiongate.gate.tokens import ApiTokenInfo, ApiTokens, Scope
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, NewEvent

__all__ = ("FORWARD_AUTH_METHODS", "forward_auth", "introspect", "revoke")

FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"
FORWARD_AUTH_METHODS = (
    HttpMethod.OPTIONS,  # first: Litestar adds an OPTIONS handler of its own to a path whose first handler lacks one
    HttpMethod.GET,
    HttpMethod.HEAD,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
)
"""A proxy asks with the method of the request it guards (Traefik and Caddy do; nginx's subrequest too)."""
CALLER_SCOPES: tuple[Scope, ...] = ("introspect", "admin")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sessiongate"'}
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '%"\\')
"""Visible ASCII but ``%``, ``"`` and ``\\`` stays as it is in a header value; anything else is percent-encoded."""
_INACTIVE = b'{"active":false}'


class Introspection(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """RFC 7662's answer about an active credential."""

    active: bool
    sub: str | None = None
    sid: str | None = None
    exp: int | None = None
    iat: int | None = None
    client_id: str | None = None
    tenant: str | None = None
    scope: str | None = None


async def _forward_auth(request: Request[Any, Any, Any]) -> Response[bytes]:
    """200 with the session's headers when the request carries a live session of an enabled dialect, else 401; 403
    when a configured rule matching the guarded request does not hold for that session (:mod:`.access`).

    The dialects are asked in the order they are enabled; the first whose credential holds answers. A credential
    that does not hold is passed over (a browser may carry an outdated cookie of one dialect beside a live one of
    another); an outage is not, and answers 503.
    """
    services: Services = request.app.state.services
    dialects: Mapping[str, DialectPlugin] = request.app.state.dialects
    for dialect in dialects.values():
        try:
            session = await dialect.authenticate(request)
        except GatewayError as exc:
            if exc.status >= 500:  # a server error is the gateway's, not the credential's
                raise
            continue
        except RecursionError:
            # A cookie of JSON nested past the decoder's depth: the dialect answers it 400, but a proxy takes any
            # answer but 2xx, 401 and 403 for the gateway's failure (nginx: 500), so here it is a credential that
            # does not hold.
            continue
        if session is not None:
            roles = await _roles(services, session)
            rules = services.settings.gateway.forward_auth_rules
            if rules and access.refuses(
                rules, access.original_request(request.headers, request.method), session, roles
            ):
                raise Forbidden("this session may not reach this resource")
            return Response(b"", status_code=200, headers=_session_headers(session, roles), media_type=TEXT)
    raise Unauthenticated("no live session")


def _forward_auth_route(method: HttpMethod) -> HTTPRouteHandler:
    # One handler per method, so that each has an operation id of its own (forwardAuth for GET, forwardAuthPost, …).
    suffix = "" if method is HttpMethod.GET else method.value.title()
    return route("/forward-auth", http_method=[method], operation_id=f"forwardAuth{suffix}", status_code=200)(
        _forward_auth
    )


forward_auth = [_forward_auth_route(method) for method in FORWARD_AUTH_METHODS]
"""``{prefix}/forward-auth`` with every method a proxy may ask with."""


@post("/introspect", operation_id="introspectToken", status_code=200)
async def introspect(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RFC 7662: whether ``token`` is an active credential of the gateway, and what it stands for. Never slides."""
    services = await _caller(request)
    token, hint = await _token_form(request)
    found = await introspection.find(token, services, request.app.state.dialects, hint=hint)
    if found is None:
        return Response(_INACTIVE, media_type="application/json")
    session = found.session
    roles = await _roles(services, session)
    answer = Introspection(
        active=True,
        sub=session.principal_id or session.subject,
        sid=session.id,
        exp=int(found.expires_at.timestamp()),
        iat=int(found.issued_at.timestamp()),
        client_id=session.dialect,
        tenant=session.tenant,
        scope=" ".join(roles) if roles else None,
    )
    return Response(msgspec.json.encode(answer), media_type="application/json")


@post("/revoke", operation_id="revokeToken", status_code=200)
async def revoke(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RFC 7009: end the session ``token`` belongs to; 200 whether or not it was an active credential. Ending one is
    an audit event, written before the answer."""
    services, info = await _calling_token(request)
    token, hint = await _token_form(request)
    found = await introspection.find(token, services, request.app.state.dialects, hint=hint)
    if found is not None:
        session = found.session
        with contextlib.suppress(NotFound):  # ended meanwhile: what was asked is done
            await services.sessions.revoke(session.id, tenant=session.tenant)
        event = NewEvent(
            kind="session.revoked",
            actor=f"api-token:{info.name}",
            tenant=session.tenant,
            dialect=session.dialect,
            principal_id=session.principal_id,
            session_id=session.id,
            client_address=client_address(request, trust_forwarded=services.settings.trust_forwarded),
            user_agent=request.headers.get("user-agent"),
            detail={"via": "revoke"},
        )
        await AuditLog(services.runner, services.clock).record(event)
    return Response(b"", status_code=200, media_type=TEXT)


async def _caller(request: Request[Any, Any, Any]) -> Services:
    return (await _calling_token(request))[0]


async def _calling_token(request: Request[Any, Any, Any]) -> tuple[Services, ApiTokenInfo]:
    services: Services = request.app.state.services
    token = bearer_token(request)
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    info = await tokens.authenticate(token, CALLER_SCOPES) if token is not None else None
    if info is None:
        raise Unauthenticated("a gateway API token is required (Authorization: Bearer)", headers=dict(_CHALLENGE))
    return services, info


async def _token_form(request: Request[Any, Any, Any]) -> tuple[str, str | None]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise UnsupportedMediaType(f"the body must be {FORM}")
    try:
        fields = parse_qsl((await request.body()).decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the body is not a valid form") from exc
    names = [name for name, _ in fields]
    if any(names.count(name) > 1 for name in ("token", "token_type_hint")):  # RFC 6749 3.1: each at most once
        raise InvalidRequest("a parameter is sent more than once")
    values = dict(fields)
    if not values.get("token"):
        raise InvalidRequest("token is required", field="token")
    return values["token"], values.get("token_type_hint")


def _session_headers(session: Session, roles: list[str]) -> dict[str, str]:
    headers = {
        "X-Session-Id": session.id,
        "X-Dialect": session.dialect,
        "X-Tenant": _header_value(session.tenant),
        "X-Session-Expires": session.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if subject := session.principal_id or session.subject:
        headers["X-Subject"] = _header_value(subject)
    if roles:
        headers["X-Roles"] = ",".join(_header_value(role).replace(",", "%2C") for role in roles)
    return headers


async def _roles(services: Services, session: Session) -> list[str]:
    # issp keeps its user's role on the session (as its validate answers it); the others' are their principal's.
    if isinstance(role := session.attributes.get("role"), str):
        return [role]
    if session.principal_id is None:
        return []
    principal = await services.identity.get(tenant=session.tenant, principal_id=session.principal_id)
    return list(principal.roles) if principal is not None else []


def _header_value(text: str) -> str:
    return quote(text, safe=_SAFE)
