"""The gateway's API credentials: bearer tokens that services (and, later, operators) call the gateway's own API with.

A token is a secret drawn from ``secrets``, shown once and kept only as a keyed digest
(:class:`~sessiongate.tokens.opaque.Digester`), like every other secret of the gateway. Nothing about a token is kept
in a process: every call reads its row (one indexed read), so a revoke made by any process refuses the token on the
very next request everywhere. ``last_used_at`` is written at most once per :data:`USE_INTERVAL`.
"""

from __future__ import annotations

import builtins
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from sessiongate.core.api_token_store import (
    MAX_NAME,
    SCOPES,
    STATES,
    ApiTokenInfo,
    ApiTokenStore,
    Scope,
    TokenState,
)
from sessiongate.core.errors import Conflict, InvalidRequest, NotFound
from sessiongate.storage.api_token_store import SqlApiTokenStore
from sessiongate.storage.runner import StatementRunner
from sessiongate.tokens.opaque import Digester

__all__ = (
    "MARK",
    "NAME_PATTERN",
    "SCOPES",
    "STATES",
    "USE_INTERVAL",
    "AddedToken",
    "ApiTokenInfo",
    "ApiTokens",
    "Scope",
    "TokenState",
)

MARK = "sgt_"
"""Every API token starts with it, so a leaked one is recognised (secret scanners, logs) and never taken for a JWT."""
NAME_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9._~-]{{0,{MAX_NAME - 1}}}"
"""A name: it is a path segment of the admin API (``…/admin/api-tokens/{name}``) and the actor of audit events
(``admin-token:<name>``), so only what a path segment never escapes (RFC 3986's unreserved characters), starting with
a letter or digit. A ``/`` made a token unreachable there, ``.`` and ``..`` are dropped by clients normalising a
path, and a non-ASCII name could pass for another in the audit log."""
PREFIX_LENGTH = len(MARK) + 8
"""How much of a token is kept in clear, to tell tokens apart in a listing: the mark and 48 of its 256 random bits."""
USE_INTERVAL = timedelta(seconds=60)
"""``last_used_at`` trails the last use by less than this: a call costs a write only now and then."""
_LONGEST = 256
_IMPORTABLE = re.compile(rf"{MARK}[A-Za-z0-9_-]{{32,200}}")
_NAME = re.compile(NAME_PATTERN)


class AddedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token just made: the only time its value is known."""

    info: ApiTokenInfo
    value: str


class ApiTokens:
    """Add, list, revoke and check the gateway's API tokens.

    Args:
        runner: Where the statements run (the request path's runner).
        digester: Keys the digests (the gateway's, so every process agrees).
        clock: "Now".
    """

    def __init__(self, runner: StatementRunner, digester: Digester, clock: Callable[[], datetime]) -> None:
        self.store: ApiTokenStore = SqlApiTokenStore(runner)
        self.digester = digester
        self.clock = clock

    async def add(self, name: str, scope: str, *, value: str | None = None) -> AddedToken:
        """A new token named ``name``; its value is returned once. A given ``value`` is imported instead of drawn
        (a token a deployment already hands its services, or a test's), and must look like one drawn.

        The CLI and the admin API both call this, so both refuse the same names, scopes and values; nothing is written
        before every check has passed, and a refused insert writes nothing (one statement).

        Raises:
            InvalidRequest: a bad name, scope or value.
            Conflict: a token (live or revoked) already has that name, or that value (``field`` says which).
        """
        if not _NAME.fullmatch(name):
            raise InvalidRequest(
                f"name must be 1 to {MAX_NAME} printable characters: ASCII letters, digits, '-', '.', '_' and '~', "
                "the first a letter or digit",
                field="name",
            )
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        if value is not None and not _IMPORTABLE.fullmatch(value):
            raise InvalidRequest(f"a token must be {MARK!r} and 32 to 200 URL-safe characters", field="token")
        value = value or MARK + secrets.token_urlsafe(32)
        now = self.clock()
        digest = self.digester.digest(value)
        await self._refuse_taken(name, value)
        info = await self.store.add(name=name, scope=scope, digest=digest, prefix=value[:PREFIX_LENGTH], now=now)
        if info is None:  # made by another call meanwhile: say which of the two is taken
            await self._refuse_taken(name, value)
            raise Conflict(f"a token named {name!r} exists already", field="name")
        return AddedToken(info=info, value=value)

    async def _refuse_taken(self, name: str, value: str) -> None:
        """A name and a value are each one token's: the digest column is unique, and a value digested under an
        older key of the ring would be another row authenticating as the same secret."""
        if await self._named(name) is not None:
            raise Conflict(f"a token named {name!r} exists already", field="name")
        if await self.store.digest_taken(self.digester.digests(value)):
            raise Conflict("a token with this value exists already", field="token")

    async def list(self) -> list[ApiTokenInfo]:
        """Every token, oldest first, revoked ones too."""
        return await self.store.list()

    async def page(
        self, *, scope: str | None = None, state: str | None = None, limit: int, after: uuid.UUID | None = None
    ) -> tuple[builtins.list[ApiTokenInfo], bool]:
        """Up to ``limit`` tokens, newest first, after the token with id ``after`` (keyset: stable while tokens come
        and go), and whether more follow."""
        return await self.store.page(scope=scope, state=state, limit=limit, after=after)

    async def named(self, name: str) -> ApiTokenInfo:
        """The token named ``name``, as listed.

        Raises:
            NotFound: no token has that name.
        """
        info = await self._named(name)
        if info is None:
            raise NotFound(f"no token named {name!r}", field="name")
        return info

    async def revoke(self, name: str) -> tuple[ApiTokenInfo, bool]:
        """Revoke the token named ``name``, and whether this call revoked it (again: nothing changes); it is refused
        from the next request on. Of calls racing to revoke it, exactly one changes it.

        Raises:
            NotFound: no token has that name.
        """
        info = await self.named(name)  # also keeps a name no row can have (a NUL) away from the database
        changed = await self.store.revoke(info.id, now=self.clock())
        return await self.named(name), changed

    async def authenticate(self, value: str, scopes: tuple[Scope, ...]) -> ApiTokenInfo | None:
        """The live token ``value`` is, when its scope is one of ``scopes``; else ``None``. One indexed read (and
        the lookup confirmed in constant time); ``last_used_at`` is written at most once per :data:`USE_INTERVAL`."""
        if not value.startswith(MARK) or len(value) > _LONGEST:
            return None
        found = await self.digester.find(value, self.store.by_digest, self.store.replace_digest)
        if found is None or not self.digester.matches(value, found[1]):
            return None
        info = found[0]
        if info.revoked_at is not None or info.scope not in scopes:
            return None
        now = self.clock()
        if info.last_used_at is None or now - info.last_used_at >= USE_INTERVAL:
            await self.store.note_use(info.id, now=now)
        return info

    async def _named(self, name: str) -> ApiTokenInfo | None:
        return await self.store.named(name)
