"""PORTOS wire ⇄ core, and the problem-details body of every failure."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from sessiongate.dialect import (
    GatewayError,
    InvalidRequest,
    RefreshRaced,
    SessionLimitReached,
    humanize,
)
from sessiongate.dialect import models as core
from sessiongate_portos import wire
from sessiongate_portos.devices import RegisteredDevice, exclusive_key
from sessiongate_portos.ndata import BEARER

__all__ = (
    "ValidationFailed",
    "auth_out",
    "bind",
    "claims",
    "mint_refresh",
    "page_out",
    "problem_out",
    "profile_out",
    "session_in",
    "session_out",
    "timestamp",
)

T = TypeVar("T")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
# S4/S5: errorCode by meaning; failures with no documented code carry none.
_ERROR_CODES = {401: 1, 403: 2, 400: 3, 423: 5, 409: 6}
_TITLES = {
    400: "One or more validation errors occurred.",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    423: "Locked",
    429: "Too Many Requests",
    500: "An error occurred while processing your request.",
    503: "Service Unavailable",
}
_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
    415: "https://tools.ietf.org/html/rfc9110#section-15.5.16",
    423: "https://tools.ietf.org/html/rfc4918#section-11.3",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
}


class ValidationFailed(InvalidRequest):
    """A 400 naming several members at once (``errors[]``); each entry is (member, message, constraint)."""

    def __init__(self, errors: list[tuple[str, str, str]]) -> None:
        super().__init__(errors[0][1], field=errors[0][0])
        self.errors = errors


def bind(body: dict[str, Any], model: type[T]) -> T:
    """``body`` as ``model``, its member names matched case-insensitively, every missing member reported at once.

    An exact spelling wins over another casing of the same name; members the model does not know are ignored.

    Raises:
        ValidationFailed: members missing, or of the wrong type or length.
    """
    fields = msgspec.structs.fields(model)  # type: ignore[arg-type]
    folded: dict[str, Any] = {}
    for key in sorted(body, key=lambda k: k not in {f.encode_name for f in fields}):
        folded.setdefault(key.lower(), body[key])
    values = {f.encode_name: folded[f.encode_name.lower()] for f in fields if f.encode_name.lower() in folded}
    missing = [f.encode_name for f in fields if f.required and f.encode_name not in values]
    if missing:
        raise ValidationFailed([(name, f"The {name} field is required.", "Required") for name in missing])
    try:
        return msgspec.convert(values, model, strict=True)
    except msgspec.ValidationError as exc:
        message, member = humanize(str(exc))
        raise ValidationFailed([(member or "$", message, "Invalid")]) from exc


def mint_refresh() -> str:
    """S2's refresh-token look: 32 random bytes in standard base64, ending in ``=``."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def session_in(
    principal: core.Principal, device: RegisteredDevice, *, tenant: str, client_address: str
) -> core.NewSession:
    """A login to ``device``; on a sale-environment device it shares the device's exclusive key (S7)."""
    return core.NewSession(
        tenant=tenant,
        dialect="portos",
        principal_id=principal.id,
        subject=principal.login,
        client_address=client_address,
        device=core.Device(id=device.id, name=device.name, env=device.env),
        reuse_key=exclusive_key(device),
    )


def claims(session: core.Session) -> dict[str, str]:
    """Decision D3: ``sid`` = sessionId, ``sub`` = user id (``iat``/``exp`` are added by the key ring)."""
    return {"sid": session_id(session), "sub": session.principal_id or ""}


def session_id(session: core.Session) -> str:
    """S1's 32-character sessionId: the session's UUID as 32 hex digits."""
    return session.id.replace("-", "")


def timestamp(when: datetime) -> str:
    """ISO-8601 in UTC with ``Z``; the fraction keeps its significant digits only, as in S1's samples."""
    when = when.astimezone(UTC)
    fraction = f"{when.microsecond:06d}".rstrip("0")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def session_out(session: core.Session, *, login: str | None = None) -> wire.Session:
    """Any dialect's session in S1's shape (decision D9 in the spec: how foreign sessions are named).

    ``login`` is the login of the session's principal, which names it before its subject does, as the listing's
    ``identity.userName`` filter and sort key do (``ndata.MEMBERS``).
    """
    portos = session.dialect == "portos"
    return wire.Session(
        session_id=session_id(session),
        identity=wire.Identity(
            user_name=login or session.subject or "",
            device_name=session.device.name or session.device.id or session.dialect,
            env_name=session.device.env or session.dialect,
            authentication_type=BEARER if portos else session.dialect,
        ),
        started_at=timestamp(session.created_at),
        expires_at=timestamp(session.expires_at),
        last_access_at=timestamp(session.last_seen_at),
        version=session.version,
    )


def page_out(page: core.Page[core.Session], logins: dict[str, str], *, count_only: bool) -> wire.QueryResult:
    """``QueryResult<Session>``: ``count`` is the page's size, ``totalCount`` every match (decision D6).

    With ``$count=true`` there are no ``items``; ``count`` is then the size the page would have had.
    """
    total = page.total or 0
    if count_only:
        return wire.QueryResult(count=max(0, min(page.take, total - page.skip)), total_count=total)
    items = [session_out(s, login=logins.get(s.principal_id or "")) for s in page.items]
    return wire.QueryResult(items=items, count=len(items), total_count=total)


def user_out(principal: core.Principal) -> wire.User:
    """S2's ``user``; ``rights`` are the principal's permissions."""
    return wire.User(
        id=principal.id
        if _OBJECT_ID.fullmatch(principal.id)
        else hashlib.sha256(principal.id.encode()).hexdigest()[:24],
        is_virtual=False,
        name=principal.display_name or principal.login,
        user_name=principal.login,
        feature_name=None,
        rights=list(principal.permissions),
    )


def device_out(device: RegisteredDevice) -> wire.Device:
    """S2's ``device``."""
    return wire.Device(
        name=device.name,
        env_name=device.env,
        description=device.description,
        preferences=device.preferences,
        settings=device.settings,
    )


def auth_out(
    token: core.IssuedToken, refresh: str, principal: core.Principal, device: RegisteredDevice
) -> wire.AuthResult:
    """S2's ``AuthResult``."""
    return wire.AuthResult(
        token_id=token.value, refresh_token=refresh, user=user_out(principal), device=device_out(device)
    )


def profile_out(principal: core.Principal, device: RegisteredDevice) -> wire.UserProfileContext:
    """``UserProfileContext``: the user and device of the caller's login (decision D3 in the spec)."""
    return wire.UserProfileContext(user=user_out(principal), device=device_out(device))


def problem_out(error: GatewayError, *, instance: str) -> wire.ProblemDetails:
    """S4's ``ProblemDetails``; a 400 is ``PortosValidationProblemDetails`` with one entry per member at fault.

    A login refused by the user's session cap is a forbidden operation, S6's 403, with no ``errorCode``: none of
    S5's six means it (spec decision 13).
    """
    capped = isinstance(error, SessionLimitReached)
    status = 403 if capped else error.status
    body = wire.ProblemDetails(
        type=_TYPES.get(status, _TYPES[500]),
        title=_TITLES.get(status, _TITLES[500]),
        status=status,
        detail=error.message if status < 500 or status == 503 else "internal error",  # a 503 says why, safely
        instance=instance,
        trace_id=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
    )
    if not capped and (code := _ERROR_CODES.get(status)) is not None:
        body.error_code = code
    if isinstance(error, RefreshRaced):
        body.resource = wire.Resource(name="Session", id=error.session_id.replace("-", ""))
    if status == 400:
        found = (
            error.errors if isinstance(error, ValidationFailed) else [(error.field or "$", error.message, "Invalid")]
        )
        body.errors = [wire.MemberError(member_name=m, message=text, code=c) for m, text, c in found]
    return body
