"""Key material: from settings, or generated once and kept in the database so every process agrees.

A key kept in the database is only as secret as the database: with a copy of it, tokens can be forged. Given a
master key (``SESSIONGATE_SECRET_KEY``), the keys the gateway generates are kept encrypted under it, so a copy holds
no usable key. The encryption is ``cryptography``'s Fernet (AES-128-CBC and HMAC-SHA256), its key derived from the
master key by HKDF-SHA256, so any master key of at least 32 bytes will do. An encrypted value carries the
:data:`ENCRYPTED` prefix, which a generated key (URL-safe base64) never has: values kept in clear by an earlier start
are told apart, and encrypted at the next start with a master key. Rotation: the new master key as
``SESSIONGATE_SECRET_KEY`` and the old one in ``SESSIONGATE_SECRET_KEY_PREVIOUS`` read both; start-up, or
``sessiongate secrets rewrap``, encrypts what is stored under the new one. A key the gateway needs and cannot
decrypt stops the start: generating another would end every session.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, cast

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.settings import Settings
from sessiongate.storage.tables import SecretRecord

__all__ = (
    "ENCRYPTED",
    "KeyMaterial",
    "KeyMaterialError",
    "MasterKeys",
    "Rewrapped",
    "load_key_material",
    "rewrap",
    "say_if_kept_in_clear",
)

log = logging.getLogger("sessiongate.keys")

ENCRYPTED = "fernet:"
"""The prefix of a value kept encrypted under the master key."""
_JWT_SECRET = "jwt:auto-1"  # noqa: S105 - the name of a generated key, not a key
_DIGEST_SECRET = "digest-key"  # noqa: S105 - likewise
_HKDF_INFO = b"sessiongate sg_secret fernet v1"
_TABLE = cast("Table", SecretRecord.__table__)


class KeyMaterialError(Exception):
    """The keys kept in the database cannot be read with the master keys given: the gateway must not start."""


class KeyMaterial(msgspec.Struct, frozen=True, kw_only=True):
    """The keys a process signs and digests with."""

    jwt_keys: dict[str, str]
    active_kid: str
    digest_key: bytes
    kept_in_clear: tuple[str, ...] = ()
    """Names of the generated keys in use that the database keeps unencrypted (no master key was given)."""


class MasterKeys:
    """Encrypts under the current master key; decrypts what the current or a previous one encrypted."""

    __slots__ = ("_any", "_current")

    def __init__(self, current: str, previous: Sequence[str] = ()) -> None:
        self._current = Fernet(_fernet_key(current))
        self._any = MultiFernet([self._current, *(Fernet(_fernet_key(key)) for key in previous)])

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterKeys | None:
        """The master keys the settings give, if any."""
        if settings.secret_key is None:
            return None
        return cls(settings.secret_key, settings.secret_key_previous)

    def encrypt(self, value: str) -> str:
        """``value`` encrypted under the current master key, as stored."""
        return ENCRYPTED + self._current.encrypt(value.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The value of an encrypted ``stored``.

        Raises:
            InvalidToken: none of the master keys encrypted it (or it was altered).
        """
        return self._any.decrypt(_token(stored)).decode()

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted under the current master key."""
        try:
            self._current.decrypt(_token(stored))
        except InvalidToken:
            return False
        return True


def _fernet_key(master: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(master.encode())
    return base64.urlsafe_b64encode(derived)


def _token(stored: str) -> bytes:
    return stored.removeprefix(ENCRYPTED).encode("ascii")


async def load_key_material(engine: AsyncEngine, settings: Settings) -> KeyMaterial:
    """Keys from settings where given; the rest generated on first start and read back from the database.

    Generation is an insert-if-absent followed by a read, so two processes starting together agree. With a master
    key, what is stored is first brought under it (:func:`rewrap`).

    Raises:
        KeyMaterialError: a key in use is encrypted, and no master key given decrypts it.
    """
    master = MasterKeys.from_settings(settings)
    given = {_JWT_SECRET: bool(settings.jwt_keys), _DIGEST_SECRET: bool(settings.token_key)}
    needed = [name for name, configured in given.items() if not configured]
    for name in needed:
        await _insert_if_absent(engine, name, secrets.token_urlsafe(48), master)
    if master is not None:
        await rewrap(engine, master)
    kept = {name: _readable(name, value, master) for name, value in (await _stored(engine, needed)).items()}
    jwt_keys = dict(settings.jwt_keys) or {_JWT_SECRET.split(":", 1)[1]: kept[_JWT_SECRET]}
    return KeyMaterial(
        jwt_keys=jwt_keys,
        active_kid=settings.jwt_active_kid or next(iter(jwt_keys)),
        digest_key=(settings.token_key or kept[_DIGEST_SECRET]).encode(),
        kept_in_clear=tuple(needed) if master is None else (),
    )


def say_if_kept_in_clear(settings: Settings, kept_in_clear: Sequence[str]) -> None:
    """In production, log that generated keys are kept in clear (no master key): a copy of the database forges tokens.

    Args:
        settings: The gateway's settings.
        kept_in_clear: :attr:`KeyMaterial.kept_in_clear`.
    """
    if settings.environment == "production" and kept_in_clear:
        log.warning(
            "keys are kept in clear in the database, so a copy of it can forge tokens: "
            "set SESSIONGATE_SECRET_KEY (or SESSIONGATE_SECRET_KEY_FILE) to keep them encrypted",
            extra={"keys": list(kept_in_clear)},
        )


def _readable(name: str, stored: str, master: MasterKeys | None) -> str:
    if not stored.startswith(ENCRYPTED):
        return stored
    if master is None:
        raise KeyMaterialError(
            "the keys kept in the database are encrypted: start with SESSIONGATE_SECRET_KEY "
            "(or SESSIONGATE_SECRET_KEY_FILE) set to the master key they were encrypted under"
        )
    try:
        return master.decrypt(stored)
    except InvalidToken:
        raise KeyMaterialError(
            f"the key {name!r} kept in the database is encrypted under another master key than "
            "SESSIONGATE_SECRET_KEY and SESSIONGATE_SECRET_KEY_PREVIOUS: start with the master key it was encrypted "
            "under (during a rotation, that one in SESSIONGATE_SECRET_KEY_PREVIOUS)"
        ) from None


async def _insert_if_absent(engine: AsyncEngine, name: str, value: str, master: MasterKeys | None) -> None:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    stored = value if master is None else master.encrypt(value)
    stmt = (
        insert(_TABLE)
        .values(id=uuid7(), name=name, value=stored, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def _stored(engine: AsyncEngine, names: Sequence[str]) -> dict[str, str]:
    if not names:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(select(_TABLE.c.name, _TABLE.c.value).where(_TABLE.c.name.in_(names)))
        return {str(name): str(value) for name, value in rows}


class Rewrapped(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`rewrap` found and did, by key name."""

    encrypted: tuple[str, ...] = ()
    """Kept in clear until now; now encrypted under the current master key."""
    reencrypted: tuple[str, ...] = ()
    """Encrypted under a previous master key until now; now under the current one."""
    current: tuple[str, ...] = ()
    """Already encrypted under the current master key."""
    unreadable: tuple[str, ...] = ()
    """Encrypted under none of the master keys given; left as they are."""


async def rewrap(engine: AsyncEngine, master: MasterKeys) -> Rewrapped:
    """Bring every key kept in the database under the current master key.

    Each value is replaced only if it is still the one read (compare and set), so processes doing this at once,
    and gateways serving meanwhile, agree; the keys themselves never change, only how they are stored.
    """
    found: dict[_Found, list[str]] = {"encrypted": [], "reencrypted": [], "current": [], "unreadable": []}
    async with engine.connect() as conn:
        names = [str(name) for name in (await conn.execute(select(_TABLE.c.name).order_by(_TABLE.c.name))).scalars()]
    for name in names:
        found[await _rewrap_one(engine, master, name)].append(name)
    return Rewrapped(
        encrypted=tuple(found["encrypted"]),
        reencrypted=tuple(found["reencrypted"]),
        current=tuple(found["current"]),
        unreadable=tuple(found["unreadable"]),
    )


_Found = Literal["encrypted", "reencrypted", "current", "unreadable"]


async def _rewrap_one(engine: AsyncEngine, master: MasterKeys, name: str) -> _Found:
    while True:
        async with engine.connect() as conn:
            stored = (await conn.execute(select(_TABLE.c.value).where(_TABLE.c.name == name))).scalar_one()
        kind: _Found
        if not stored.startswith(ENCRYPTED):
            kind, value = "encrypted", stored
        elif master.is_current(stored):
            return "current"
        else:
            try:
                kind, value = "reencrypted", master.decrypt(stored)
            except InvalidToken:
                return "unreadable"
        replace = update(_TABLE).where(_TABLE.c.name == name, _TABLE.c.value == stored)
        async with engine.begin() as conn:
            result = await conn.execute(replace.values(value=master.encrypt(value), updated_at=datetime.now(UTC)))
        if result.rowcount == 1:
            return kind
        # Someone else replaced it meanwhile: look again.
