"""The storage seam of the gateway's API tokens; ``sessiongate.storage.api_token_store`` implements it.

The store keeps digests only: drawing a token, digesting it and confirming a lookup in constant time are the
service's (``sessiongate.gate.tokens``).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, get_args

import msgspec

__all__ = ("MAX_NAME", "SCOPES", "STATES", "ApiTokenInfo", "ApiTokenStore", "Scope", "TokenState")

Scope = Literal["introspect", "admin"]
"""``introspect``: forward-auth helpers, introspection and revocation (what a resource server needs). ``admin``: that
and the admin API (which can itself make and revoke tokens of either scope)."""
SCOPES: tuple[Scope, ...] = get_args(Scope)
TokenState = Literal["live", "revoked"]
STATES: tuple[TokenState, ...] = get_args(TokenState)
MAX_NAME = 64
"""A token name's most characters (= ``sg_gateway_token.name``)."""


class ApiTokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never its value, only its first characters."""

    id: str
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> TokenState:
        """``revoked`` once revoked (refused from then on), else ``live``."""
        return "live" if self.revoked_at is None else "revoked"


class ApiTokenStore(Protocol):
    """What the API token service needs from a database. Each method is one statement."""

    async def add(self, *, name: str, scope: str, digest: str, prefix: str, now: datetime) -> ApiTokenInfo | None:
        """Store a new live token, as listed; ``None`` (nothing written) when a token already has that name or
        digest."""
        ...

    async def named(self, name: str) -> ApiTokenInfo | None:
        """The token named ``name`` (live or revoked), or ``None``; text holding NUL names none."""
        ...

    async def digest_taken(self, digests: Sequence[str]) -> bool:
        """Whether a token is stored under any of ``digests``."""
        ...

    async def list(self) -> builtins.list[ApiTokenInfo]:
        """Every token, oldest first (id breaks ties), revoked ones too."""
        ...

    async def page(
        self, *, scope: str | None, state: str | None, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[ApiTokenInfo], bool]:
        """Up to ``limit`` tokens (of ``scope``, in ``state`` when given), newest first, with ids below ``after``
        (keyset), and whether more follow."""
        ...

    async def revoke(self, token_id: str, *, now: datetime) -> bool:
        """Mark a token revoked at ``now`` unless it is already; whether this call did (of racing calls, one)."""
        ...

    async def by_digest(self, digest: str) -> tuple[ApiTokenInfo, str] | None:
        """The token stored under ``digest``, with the stored digest for a constant-time compare: one indexed read."""
        ...

    async def replace_digest(self, old: str, new: str) -> None:
        """Store a token under another digest (of the same value, under another digest key), where it is still
        ``old``."""
        ...

    async def note_use(self, token_id: str, *, now: datetime) -> None:
        """Record a token's last use."""
        ...
