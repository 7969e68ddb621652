"""Zelf wire ⇄ core."""

from __future__ import annotations

from sessiongate.dialect import GatewayError
from sessiongate.dialect import models as core
from sessiongate_zelf import wire

__all__ = ("SESSION_CLAIM", "claims", "create_in", "error_out", "session_out")

SESSION_CLAIM = "session"
"""The claim of zelf's token that names its session."""


def create_in(body: wire.CreateSession, *, client_address: str, tenant: str) -> core.NewSession:
    """A device session; "the same client asking again" is the same identifier from the same address."""
    return core.NewSession(
        tenant=tenant,
        dialect="zelf",
        subject=body.identifier,
        client_address=client_address,
        device=core.Device(id=body.identifier),
        reuse_key=f"zelf|{tenant}|{client_address}|{body.identifier}",
    )


def claims(session: core.Session) -> dict[str, str]:
    """The vendor's claims (``iat`` and ``exp`` are added by the key ring)."""
    return {SESSION_CLAIM: session.id, "identifier": session.subject or ""}


def session_out(session: core.Session, token: core.IssuedToken) -> wire.CreateSessionResponse:
    """``{"data": {token, activatedAt, expiresAt}}`` with the session's original times."""
    return wire.CreateSessionResponse(
        data=wire.SessionData(
            token=token.value,
            activated_at=int(session.created_at.timestamp()),
            expires_at=int(session.expires_at.timestamp()),
        )
    )


def error_out(error: GatewayError) -> wire.Error:
    """``{"error": "<message>"}``, the body of every zelf failure."""
    return wire.Error(error=error.message)
