"""The identity service: principals, their passwords and auth tokens, and throttled logins, for every dialect."""

from __future__ import annotations

import uuid
from collections.abc import Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
from argon2 import PasswordHasher

from sessiongate import meters
from sessiongate.core.errors import (
    AccountDisabled,
    AccountLocked,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from sessiongate.core.identity_store import (
    GATEWAY_REALM,
    MAX_DISPLAY_NAME,
    MAX_EMAIL,
    MAX_LOGIN,
    MAX_PUBLIC_ID,
    MAX_TENANT,
    PrincipalDraft,
    PrincipalStore,
    ThrottleStore,
)
from sessiongate.core.models import Principal
from sessiongate.identity.passwords import MAX_PASSWORD, Passwords
from sessiongate.identity.throttle import Lock, Throttle, ThrottlePolicy
from sessiongate.sessions.audit import Detail
from sessiongate.sessions.service import Clock, SessionService
from sessiongate.storage.engine import Database
from sessiongate.storage.principal_store import SqlPrincipalStore
from sessiongate.storage.runner import AsyncEngineRunner, StatementRunner
from sessiongate.storage.throttle_store import SqlThrottleStore
from sessiongate.tokens.opaque import Digester, new_secret

__all__ = ("INVALID_CREDENTIALS", "IdentityService", "check_addressable_id")

_T = TypeVar("_T")
INVALID_CREDENTIALS = "invalid credentials"
"""The one message for an unknown login, a wrong password and an unknown token: it tells an attacker nothing."""
TOKEN_TOUCH_INTERVAL = timedelta(seconds=60)
"""Record a token's use at most this often, to spare the database a write per request."""
_NUL = "\x00"  # PostgreSQL text cannot hold it: such a name cannot exist, and must not reach the database
_DOT_SEGMENTS = frozenset({".", ".."})


def check_addressable_id(principal_id: str | None) -> None:
    """Refuse an id an operator chooses that no URL path can name: clients resolve ``.`` and ``..`` segments away
    (RFC 3986 5.2.4), so ``/admin/principals/./enable`` reaches ``/admin/principals/enable``. (A dialect's own users
    keep the ids their clients give: those are never a path segment of the admin API's.)

    Raises:
        InvalidRequest: ``.`` or ``..``.
    """
    if principal_id in _DOT_SEGMENTS:
        raise InvalidRequest("id cannot be '.' or '..': no URL path can name it", field="id")


class IdentityService:
    """Provision principals and authenticate them by password or auth token.

    Args:
        engine: The gateway's engine.
        sessions: The session service, to end a principal's sessions when it is disabled or its password changes.
        digester: Keys the digests of auth tokens and of throttle keys.
        clock: Returns "now"; tests pass a fake one so throttle windows and locks are tested without sleeping.
        policy: Login throttling limits.
        hasher: argon2id parameters for new hashes (the library's defaults when not given); a stored hash made with
            other parameters is replaced at the next successful login.
        runner: Where statements run; the gateway passes its shared runner (on SQLite, its single writer).
        password_workers: Passwords hashed at once (see :class:`Passwords`).
        password_queue: Logins that may wait for a hashing worker; more are refused at once (see :class:`Passwords`).
        principals: Where principals and their credentials are kept; SQL over ``runner`` when not given.
        failures: Where login failures are counted; SQL over ``runner``, under ``policy``, when not given.
    """

    def __init__(
        self,
        engine: Database,
        sessions: SessionService,
        digester: Digester,
        clock: Clock,
        policy: ThrottlePolicy = ThrottlePolicy(),  # noqa: B008 - frozen, so one shared default is safe
        *,
        hasher: PasswordHasher | None = None,
        runner: StatementRunner | None = None,
        password_workers: int | None = None,
        password_queue: int | None = None,
        principals: PrincipalStore | None = None,
        failures: ThrottleStore | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.digester = digester
        self.clock = clock
        self.policy = policy
        self.runner = runner or AsyncEngineRunner(engine)
        self.passwords = Passwords(hasher, workers=password_workers, queue=password_queue)
        self.principals: PrincipalStore = principals or SqlPrincipalStore(engine, self.runner)
        self.throttle = Throttle(failures or SqlThrottleStore(engine, self.runner, policy), digester, policy)

    # -- provisioning -------------------------------------------------------------------------------------------

    async def add_principal(
        self,
        *,
        tenant: str = "default",
        login: str,
        principal_id: str | None = None,
        email: str | None = None,
        display_name: str | None = None,
        roles: Sequence[str] = (),
        permissions: Sequence[str] = (),
        password: str | None = None,
    ) -> Principal:
        """Provision a principal.

        Args:
            tenant: The tenant it belongs to.
            login: What it logs in with; unique in the tenant.
            principal_id: Its public id (what sessions carry); a new UUID string when not given.
            email: Its e-mail address.
            display_name: Its name for people.
            roles: Its roles.
            permissions: Its permissions.
            password: Its password, hashed with argon2id; ``None`` for a principal that cannot log in by password.

        Raises:
            InvalidRequest: an empty or too long member.
            Conflict: the login or the id already exists in the tenant.
        """
        draft = self._draft(
            tenant=tenant,
            login=login,
            principal_id=principal_id,
            email=email,
            display_name=display_name,
            roles=roles,
            permissions=permissions,
            password_hash=await self._hash(password) if password is not None else None,
        )
        added = await self.principals.insert(draft)
        if added is None:
            taken = "login" if await self.by_login(tenant=tenant, login=login) is not None else "id"
            shown = login if taken == "login" else draft.public_id
            raise Conflict(f"a principal with {taken} {shown!r} already exists in tenant {tenant!r}")
        return added

    async def add_principal_if_absent(
        self,
        *,
        tenant: str = "default",
        login: str,
        email: str | None = None,
        display_name: str | None = None,
        roles: Sequence[str] = (),
        permissions: Sequence[str] = (),
        password: str | None = None,
    ) -> tuple[Principal, bool]:
        """Provision a principal unless its login exists already (then leave it as it is); the bool says created.

        One ``INSERT … ON CONFLICT DO NOTHING``, so several processes starting at once create it exactly once.

        Raises:
            InvalidRequest: an empty or too long member.
        """
        draft = self._draft(
            tenant=tenant,
            login=login,
            principal_id=None,
            email=email,
            display_name=display_name,
            roles=roles,
            permissions=permissions,
            password_hash=await self._hash(password) if password is not None else None,
        )
        if (added := await self.principals.insert_if_absent(draft)) is not None:
            return added, True
        existing = await self.by_login(tenant=tenant, login=login)
        if existing is None:  # the conflict was on the (random) id: vanishingly unlikely, never silent
            raise Conflict(f"could not create principal {login!r}")
        return existing, False

    async def upsert_principal(
        self,
        *,
        tenant: str,
        principal_id: str,
        display_name: str | None = None,
        login: str | None = None,
        realm: str = GATEWAY_REALM,
    ) -> tuple[Principal, bool]:
        """Create the principal with this public id, or update the display name of the existing one.

        One ``INSERT … ON CONFLICT (tenant, public id) DO UPDATE … WHERE realm``: a principal of another realm with
        that id is left as it is and refused. A ``None`` display name keeps the stored one; the login of an existing
        principal never changes. Outside the gateway's realm, either way counts as a use (``last_used_at``).

        Args:
            tenant: The tenant.
            principal_id: The public id.
            display_name: The display name to set, or ``None`` to keep it.
            login: The login of a new principal; its id when not given.
            realm: The realm the principal is, or is made, in.

        Returns:
            The principal as it now is, and whether it was created.

        Raises:
            InvalidRequest: an empty or too long member.
            Conflict: the id belongs to a principal of another realm, or a new principal's login to another principal
                of the tenant.
        """
        draft = self._draft(
            tenant=tenant,
            login=principal_id if login is None else login,
            principal_id=principal_id,
            email=None,
            display_name=display_name,
            roles=(),
            permissions=(),
            password_hash=None,
            realm=realm,
        )
        upserted = await self.principals.upsert(draft)
        if upserted.outcome == "login_taken":
            raise Conflict(f"login {draft.login!r} belongs to another principal")
        if upserted.principal is None:  # other_realm
            raise Conflict(f"id {principal_id!r} belongs to a principal of another realm")
        return upserted.principal, upserted.outcome == "created"

    async def get(self, *, tenant: str, principal_id: str, realm: str | None = None) -> Principal | None:
        """The principal with this public id (in ``realm``, when given), or ``None``."""
        if _NUL in principal_id:
            return None
        return await self.principals.get(tenant=tenant, public_id=principal_id, realm=realm)

    async def logins(self, *, tenant: str, principal_ids: Iterable[str]) -> dict[str, str]:
        """The logins of those of ``principal_ids`` that exist in ``tenant``, by public id: one read for a page."""
        wanted = sorted({p for p in principal_ids if _NUL not in p})
        if not wanted:
            return {}
        return await self.principals.logins(tenant=tenant, public_ids=wanted)

    async def by_login(self, *, tenant: str, login: str) -> Principal | None:
        """The principal with this login, or ``None``."""
        if _NUL in login:
            return None
        return await self.principals.by_login(tenant=tenant, login=login)

    async def record_use(self, principal: Principal, *, every: timedelta) -> Principal:
        """Note that a dialect used a principal of its realm (a registration), at most once per ``every``.

        ``last_used_at`` trails the last use by less than ``every``, so a use costs a write only now and then; the
        gateway's own principals are left alone (nothing sweeps them).
        """
        now = self.clock()
        seen = principal.last_used_at
        if principal.realm == GATEWAY_REALM or (seen is not None and now - seen < every):
            return principal
        await self.principals.record_use(
            tenant=principal.tenant, public_id=principal.id, realm=principal.realm, now=now
        )
        return msgspec.structs.replace(principal, last_used_at=now)

    async def sweep_unused(self, *, realm: str, idle: timedelta, batch: int = 500) -> int:
        """Delete one batch of principals of ``realm`` unused for ``idle``; how many went.

        Only principals a dialect makes by itself are swept (never the gateway's): not disabled (a ban must outlast
        the sweep), last used more than ``idle`` ago, and holding no live session in any dialect. A later use makes
        such a principal again. The candidates are read in ``last_used_at`` order from the realm's index.
        """
        if realm == GATEWAY_REALM:
            raise InvalidRequest("the gateway's principals are never swept", field="realm")
        return await self.principals.delete_unused(realm=realm, idle=idle, now=self.clock(), batch=batch)

    async def list(self, *, tenant: str | None = None) -> list[Principal]:
        """Every principal (of one tenant, when given), by tenant and login."""
        return await self.principals.list_all(tenant=tenant)

    async def set_password(
        self, *, tenant: str = "default", login: str, password: str, keep_session_id: str | None = None
    ) -> None:
        """Set a principal's password, end every other session of it and lift a lock on its login.

        Args:
            tenant: The tenant.
            login: Whose password.
            password: The new password.
            keep_session_id: The session the change was made from, which stays; every other one ends.

        Raises:
            InvalidRequest: an empty or too long password.
            NotFound: no such login in the tenant.
        """
        hashed = await self._hash(password)
        changed = await self.principals.set_password_hash(
            tenant=tenant, login=login, password_hash=hashed, now=self.clock()
        )
        public_id = _found(changed, tenant, login)
        await self.sessions.revoke_all_for_principal(
            public_id, tenant=tenant, except_id=keep_session_id, actor="password-change"
        )
        await self.throttle.clear(self.throttle.login_key(tenant, login))

    async def disable(self, *, tenant: str = "default", login: str, actor: str | None = None) -> None:
        """Disable a principal and end all its sessions; its password and tokens stop working until enabled.

        With ``actor`` (``"cli"`` for ``sessiongate users disable``), ending any session is an audit event by it; a
        caller recording its own event passes none.

        Raises:
            NotFound: no such login in the tenant.
        """
        changed = await self.principals.set_disabled(tenant=tenant, login=login, disabled=True, now=self.clock())
        public_id = _found(changed, tenant, login)
        await self.sessions.revoke_all_for_principal(public_id, tenant=tenant, actor=actor)

    async def enable(self, *, tenant: str = "default", login: str) -> None:
        """Enable a disabled principal.

        Raises:
            NotFound: no such login in the tenant.
        """
        changed = await self.principals.set_disabled(tenant=tenant, login=login, disabled=False, now=self.clock())
        _found(changed, tenant, login)

    async def delete(self, *, tenant: str = "default", login: str) -> None:
        """Delete a principal, its auth tokens with it, and end all its sessions (they stay listed, as revoked).

        Raises:
            NotFound: no such login in the tenant.
        """
        public_id = _found(await self.principals.delete(tenant=tenant, login=login), tenant, login)
        await self.sessions.revoke_all_for_principal(public_id, tenant=tenant)

    # -- auth tokens --------------------------------------------------------------------------------------------

    async def add_auth_token(self, *, tenant: str = "default", login: str, replace: bool = False) -> str:
        """A new long-lived auth token for a principal: returned once, only its keyed digest is stored.

        Args:
            tenant: The tenant.
            login: Whose token.
            replace: Revoke the principal's other auth tokens in the same transaction (one token per principal).

        Raises:
            NotFound: no such login in the tenant.
        """
        token = new_secret()
        digest, now = self.digester.digest(token), self.clock()
        if not await self.principals.add_auth_token(
            tenant=tenant, login=login, digest=digest, now=now, replace=replace
        ):
            raise NotFound(f"no principal with login {login!r} in tenant {tenant!r}")
        return token

    async def revoke_auth_tokens(self, *, tenant: str = "default", login: str) -> int:
        """Revoke every auth token of a principal; how many there were.

        Raises:
            NotFound: no such login in the tenant.
        """
        return _found(await self.principals.revoke_auth_tokens(tenant=tenant, login=login), tenant, login)

    # -- authentication -----------------------------------------------------------------------------------------

    async def authenticate_password(self, *, tenant: str, login: str, password: str, client_address: str) -> Principal:
        """The principal whose login and password these are (:meth:`check_password`), the attempt counted in the
        metrics by its result and recorded as an audit event (:meth:`_counted`)."""
        meters.note_tenant(tenant)
        return await self._counted(
            self.check_password(tenant=tenant, login=login, password=password, client_address=client_address),
            tenant=tenant,
            detail={"method": "password", "login": login},
        )

    async def check_password(self, *, tenant: str, login: str, password: str, client_address: str) -> Principal:
        """The principal whose login and password these are.

        An unknown login and a wrong password give the same error after the same work (an argon2 verification
        against a dummy hash stands in for the missing one). Every attempt is charged to the client address and to
        the login before its password is checked (:meth:`Throttle.reserve`), so however many arrive at once, in
        however many processes, no more are checked than the limits allow; the charge stands as a failure unless the
        password is right. A process checks one login's attempts one at a time, and refuses at once when too many
        logins already wait for a hashing worker. A hash made with outdated parameters is replaced; success forgets
        the login's failures.

        Args:
            tenant: The tenant to look in.
            login: The login as presented.
            password: The password as presented.
            client_address: Where the attempt came from.

        Raises:
            RateLimited: too many recent failures from this client address.
            AccountLocked: too many recent failures of this login, the right password included.
            Unavailable: too many logins being checked already (with ``Retry-After``); nothing was charged.
            Unauthenticated: ``"invalid credentials"``: unknown login or wrong password.
            AccountDisabled: right password, but the principal is disabled (so disabling reveals nothing to
                someone who does not know the password).
        """
        login_key = self.throttle.login_key(tenant, login)
        address_key = self.throttle.address_key(tenant, client_address)
        # A read first: refusals during a lock cost no write and wait for no turn.
        _raise_for(await self.throttle.locks([address_key, login_key], now=self.clock()))
        async with self.throttle.turn(login_key):
            with self.passwords.admission():
                now = self.clock()
                if (refused := await self.throttle.reserve(address_key, login_key, now=now)) is not None:
                    _raise_for([refused])
                found = (
                    None if _NUL in login + tenant else await self.principals.credentials(tenant=tenant, login=login)
                )
                stored = found.password_hash if found is not None else None
                if len(password) > MAX_PASSWORD or not await self.passwords.verify(stored, password):
                    raise Unauthenticated(INVALID_CREDENTIALS)  # the charges stand as this failure
                await self.throttle.succeeded(address_key, login_key, now=now)
                assert found is not None  # a password verified against a stored hash: its principal exists
                if found.principal.disabled:
                    raise AccountDisabled("account disabled")
                if stored is not None and self.passwords.needs_rehash(stored):
                    await self._rehash(found.row_id, stored, password)
                return found.principal

    async def authenticate_token(self, *, tenant: str, token: str, client_address: str) -> Principal:
        """The principal holding this auth token (:meth:`check_token`), the attempt counted in the metrics and
        recorded as an audit event (:meth:`_counted`)."""
        meters.note_tenant(tenant)
        attempt = self.check_token(tenant=tenant, token=token, client_address=client_address)
        return await self._counted(attempt, tenant=tenant, detail={"method": "token"})

    async def check_token(self, *, tenant: str, token: str, client_address: str) -> Principal:
        """The principal holding this auth token.

        Raises:
            RateLimited: too many recent failures from this client address.
            Unauthenticated: ``"invalid credentials"``: no such token in this tenant (counted as a failure of the
                client address).
            AccountDisabled: the holder is disabled.
        """
        now = self.clock()
        address_key = self.throttle.address_key(tenant, client_address)
        _raise_for(await self.throttle.locks([address_key], now=now))
        holder = await self.digester.find(
            token,
            lambda digest: self.principals.token_holder(tenant=tenant, digest=digest),
            self.principals.replace_token_digest,
        )
        if holder is None or not self.digester.matches(token, holder.digest):
            await self.throttle.fail([address_key], now=now)
            raise Unauthenticated(INVALID_CREDENTIALS)
        principal = holder.principal
        if principal.disabled:
            raise AccountDisabled("account disabled")
        # The token's own last use: a write at most once per TOKEN_TOUCH_INTERVAL. (Until the move behind the
        # principal store this read the principal's column of the same name, never set for the gateway's own
        # principals, so every use of their tokens was a write.)
        seen = holder.last_used_at
        if seen is None or now - seen >= TOKEN_TOUCH_INTERVAL:
            await self.principals.touch_token(holder.token_id, now=now)
        return principal

    async def sweep_failures(self, *, batch: int = 500) -> int:
        """Delete one batch of login-failure rows that no longer count; how many went."""
        return await self.throttle.sweep(now=self.clock(), batch=batch)

    # -- internals ----------------------------------------------------------------------------------------------

    async def _counted(self, attempt: Coroutine[Any, Any, Principal], *, tenant: str, detail: Detail) -> Principal:
        """The principal a login attempt finds, counted by its result (``sessiongate.meters.login``) and, when the
        sessions' audit log is set, recorded: ``login.succeeded`` naming the principal; ``login.failed`` for a
        checked attempt that failed (unknown login, wrong password or token, disabled), with ``detail.reason``; and
        ``principal.locked`` for each lock it begins (``detail.lock``: ``login`` or ``address``). The presented
        login is kept in ``detail`` (an operator needs to see which one is attacked), the password or token never.
        Attempts refused by a lock already in force, or for want of a hashing worker, record nothing: refusals
        during a lock cost no write (the throttle's promise). Each event is written before the answer
        (:meth:`AuditLog.note`).
        """
        audit = self.sessions.audit
        try:
            principal = await _counted(attempt)
        except (Unauthenticated, AccountDisabled, InvalidRequest) as exc:
            if audit is not None:
                reason = "disabled" if isinstance(exc, AccountDisabled) else "invalid"
                await audit.note("login.failed", actor="user", tenant=tenant, detail=detail | {"reason": reason})
                notes = meters.notes().get()
                for kind in notes.locks_reached if notes is not None else ():
                    await audit.note("principal.locked", actor="user", tenant=tenant, detail=detail | {"lock": kind})
            raise
        if audit is not None:
            await audit.note("login.succeeded", actor="user", tenant=tenant, principal_id=principal.id, detail=detail)
        return principal

    async def _hash(self, password: str) -> str:
        if not 0 < len(password) <= MAX_PASSWORD:
            raise InvalidRequest(f"password must be 1 to {MAX_PASSWORD} characters", field="password")
        return await self.passwords.hash(password)

    async def _rehash(self, row_id: uuid.UUID, stored: str, password: str) -> None:
        fresh = await self.passwords.hash(password)
        # Only if unchanged meanwhile: a concurrent set_password must win over this upgrade of the old password.
        await self.principals.replace_password_hash(row_id, stored=stored, fresh=fresh)

    def _draft(
        self,
        *,
        tenant: str,
        login: str,
        principal_id: str | None,
        email: str | None,
        display_name: str | None,
        roles: Sequence[str],
        permissions: Sequence[str],
        password_hash: str | None,
        realm: str = GATEWAY_REALM,
    ) -> PrincipalDraft:
        public_id = str(uuid.uuid4()) if principal_id is None else principal_id
        _check_length("tenant", tenant, MAX_TENANT)
        _check_length("login", login, MAX_LOGIN)
        _check_length("id", public_id, MAX_PUBLIC_ID)
        if email is not None:
            _check_length("email", email, MAX_EMAIL)
        if display_name is not None:
            _check_length("display_name", display_name, MAX_DISPLAY_NAME, allow_empty=True)
        now = self.clock()
        return PrincipalDraft(
            tenant=tenant,
            public_id=public_id,
            login=login,
            email=email,
            display_name=display_name,
            roles=_names(roles, "roles"),
            permissions=_names(permissions, "permissions"),
            password_hash=password_hash,
            realm=realm,
            last_used_at=None if realm == GATEWAY_REALM else now,
            created_at=now,
        )


async def _counted(attempt: Coroutine[Any, Any, Principal]) -> Principal:
    """The principal a login attempt finds, counted by its result (``sessiongate.meters.login``)."""
    try:
        principal = await attempt
    except AccountLocked:
        meters.login("locked")
        raise
    except RateLimited:
        meters.login("throttled")
        raise
    except Unavailable:
        meters.login("unavailable")
        raise
    except (Unauthenticated, AccountDisabled, InvalidRequest):
        meters.login("failure")
        raise
    meters.login("success")
    return principal


def _raise_for(locks: Sequence[Lock]) -> None:
    # The address first: a client refused outright learns nothing about the login it tried.
    for kind, error in (("address", RateLimited), ("login", AccountLocked)):
        for lock in locks:
            if lock.kind == kind:
                message = "too many failed logins from this address" if kind == "address" else "account locked"
                raise error(message, headers={"Retry-After": str(lock.retry_after)})


def _check_length(name: str, value: str, limit: int, *, allow_empty: bool = False) -> None:
    if _NUL in value:
        raise InvalidRequest(f"{name} must not contain NUL characters", field=name)
    if not (0 if allow_empty else 1) <= len(value) <= limit:
        low = 0 if allow_empty else 1
        raise InvalidRequest(f"{name} must be {low} to {limit} characters", field=name)


def _names(values: Sequence[str], member: str) -> list[str]:
    if isinstance(values, str):  # a lone string is a Sequence[str] too: "admin" would become five roles
        raise InvalidRequest(f"{member} must be a list of names, not one string", field=member)
    return list(dict.fromkeys(values))


def _found(answer: _T | None, tenant: str, login: str) -> _T:
    """A store's answer about the principal with ``login``, where ``None`` says there is none.

    Raises:
        NotFound: no such login in the tenant.
    """
    if answer is None:
        raise NotFound(f"no principal with login {login!r} in tenant {tenant!r}")
    return answer
