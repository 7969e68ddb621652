"""Key material: from settings, or generated and kept in the database so every process agrees; and its rotation.

A key kept in the database is only as secret as the database: with a copy of it, tokens can be forged. Given a
master key (``SESSIONGATE_SECRET_KEY``), the keys the gateway generates are kept encrypted under it, so a copy holds
no usable key. The encryption is ``cryptography``'s Fernet (AES-128-CBC and HMAC-SHA256), its key derived from the
master key by HKDF-SHA256, so any master key of at least 32 bytes will do. An encrypted value carries the
:data:`ENCRYPTED` prefix, which a generated key (URL-safe base64) never has: values kept in clear by an earlier start
are told apart, and encrypted at the next start with a master key. Rotation: the new master key as
``SESSIONGATE_SECRET_KEY`` and the old one in ``SESSIONGATE_SECRET_KEY_PREVIOUS`` read both; start-up, or
``sessiongate secrets rewrap``, encrypts what is stored under the new one. A key the gateway needs and cannot
decrypt stops the start: generating another would end every session.

The generated keys form a ring of generations per kind: ``jwt:auto-1``, ``jwt:auto-2``, … sign JWTs (their ``kid``
is the name without ``jwt:``); ``digest-key``, ``digest-key-2``, … key the digests of opaque secrets. The newest
key that has started (``activates_at``) signs new tokens, or digests new secrets; every key not retired
(``retires_at``) verifies, or is tried by a lookup that missed. Keys given in the settings join the ring and take
precedence, so giving them ends no session: the generated keys keep working until retired. :func:`rotate` adds a
generation that starts two ``key_refresh_interval`` later, once every process has read it (:class:`KeyRingWatch`
reads the ring that often, and at once for a token naming a key it does not hold), and gives the keys it replaces a
retirement time.

What is kept is read and written through a :class:`~sessiongate.core.key_store.KeyMaterialStore`
(``storage.key_store``, built from the engine each function is given): this module decides what the keys mean, the
store only keeps their names, values and times.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sessiongate.core.key_store import KeyMaterialStore
from sessiongate.settings import Settings
from sessiongate.storage.engine import Database
from sessiongate.storage.key_store import SqlKeyMaterialStore
from sessiongate.tokens.jwt import KeyRing
from sessiongate.tokens.opaque import Digester

__all__ = (
    "ENCRYPTED",
    "MIN_READ_INTERVAL",
    "KeyKind",
    "KeyMaterial",
    "KeyMaterialError",
    "KeyRingError",
    "KeyRingWatch",
    "MasterKeys",
    "Rewrapped",
    "RingEntry",
    "Rotated",
    "key_ring",
    "load_key_material",
    "read_key_material",
    "retire",
    "rewrap",
    "rotate",
    "say_if_kept_in_clear",
)

log = logging.getLogger("sessiongate.keys")

ENCRYPTED = "fernet:"
"""The prefix of a value kept encrypted under the master key."""
MIN_READ_INTERVAL = 1.0
"""Seconds between two reads of the key ring made for tokens naming a key the process does not hold."""
KeyKind = Literal["jwt", "digest"]
"""What a key of the ring is for: signing JWTs, or keying the digests of opaque secrets."""
_GENERATED = re.compile(r"jwt:auto-(?P<jwt>[1-9][0-9]*)|digest-key(?:-(?P<digest>[1-9][0-9]*))?")
_HKDF_INFO = b"sessiongate sg_secret fernet v1"


class KeyMaterialError(Exception):
    """The keys kept in the database cannot be read with the master keys given: the gateway must not start."""


class KeyRingError(Exception):
    """A change of the key ring that is refused: it would end sessions, or the settings give that kind of key."""


class KeyMaterial(msgspec.Struct, frozen=True, kw_only=True):
    """The keys a process signs and digests with."""

    jwt_keys: dict[str, str]
    """Every key that verifies, by ``kid``: those of the settings first, then the generated ones, newest first."""
    active_kid: str
    jwt_retires: dict[str, datetime] = msgspec.field(default_factory=dict)
    """When generated signing keys stop verifying, for those given a retirement time."""
    jwt_retired: frozenset[str] = frozenset()
    """Kids of retired generated signing keys: their tokens are refused without reading the ring again."""
    digest_key: bytes
    """The key new secrets are digested under."""
    digest_older: tuple[bytes, ...] = ()
    """Keys secrets were digested under before: still tried, and what is found under them is digested again."""
    digest_newer: tuple[bytes, ...] = ()
    """Rotated-in keys that do not digest yet here (another process may already): tried too."""
    digest_name: str = ""
    """Which key digests, for the logs: a generated key's name, or ``SESSIONGATE_TOKEN_KEY``."""
    digest_tried: tuple[str, ...] = ()
    """Names of the other digest keys, for the logs (``SESSIONGATE_TOKEN_KEY_PREVIOUS[n]`` for the settings' ones)."""
    kept_in_clear: tuple[str, ...] = ()
    """Names of the generated keys in use that the database keeps unencrypted (no master key was given)."""


class RingKey(msgspec.Struct, frozen=True, kw_only=True):
    """A generated key as kept in ``sg_secret``, without its value."""

    name: str
    kind: KeyKind
    generation: int
    activates_at: datetime | None
    retires_at: datetime | None

    @property
    def kid(self) -> str:
        """The ``kid`` of a signing key: its name without ``jwt:``."""
        return self.name.removeprefix("jwt:")

    def retired(self, now: datetime) -> bool:
        """Whether the key no longer verifies (or is no longer tried) at ``now``."""
        return self.retires_at is not None and self.retires_at <= now

    def pending(self, now: datetime) -> bool:
        """Whether the key has been rotated in but does not sign (or digest) yet at ``now``."""
        return self.activates_at is not None and self.activates_at > now


class RingEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A key of the ring as ``sessiongate key-ring list`` shows it: never its value."""

    name: str
    kind: KeyKind
    in_use: bool
    """Signs new tokens (or digests new secrets)."""
    starts_at: datetime | None = None
    """When a rotated-in key starts signing (or digesting)."""
    retires_at: datetime | None = None
    retired: bool = False
    setting: str | None = None
    """The setting that gives the key, when one of ``SESSIONGATE_JWT_KEYS`` does."""


class Rotated(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`rotate` did: the key it made, when that starts, and when the keys it replaces retire."""

    name: str
    starts_at: datetime
    replaced: dict[str, datetime | None]
    """The keys it replaces, by name, and when each retires (``None``: once retired explicitly)."""


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


async def load_key_material(engine: Database, settings: Settings, *, now: datetime | None = None) -> KeyMaterial:
    """Keys from settings where given, joined by the generated ones kept in the database (made on first start).

    A kind of key the settings do not give gets a generated key when none is live (first start, or every generated
    one retired): an insert-if-absent of the next generation followed by a read, so two processes starting together
    agree. With a master key, what is stored is first brought under it (:func:`rewrap`).

    Raises:
        KeyMaterialError: a key in use is encrypted, and no master key given decrypts it.
    """
    return await _load(SqlKeyMaterialStore(engine), settings, now=now or datetime.now(UTC))


async def _load(store: KeyMaterialStore, settings: Settings, *, now: datetime) -> KeyMaterial:
    master = MasterKeys.from_settings(settings)
    ring = await _ring(store)
    for kind, given in _given(settings):
        mine = [key for key, _ in ring if key.kind == kind]
        if not given and all(key.retired(now) for key in mine):
            generation = max((key.generation for key in mine), default=0) + 1
            await _add(store, _name(kind, generation), master, now=datetime.now(UTC))
    if master is not None:
        await _rewrap(store, master)
    return _material(settings, await _ring(store), master, now)


async def read_key_material(engine: Database, settings: Settings, *, now: datetime) -> KeyMaterial:
    """The keys as :func:`load_key_material` gives them, read without changing anything (a process reading again).

    Raises:
        KeyMaterialError: a key in use cannot be decrypted, or no generated key is live where one is needed.
    """
    return await _read(SqlKeyMaterialStore(engine), settings, now=now)


async def _read(store: KeyMaterialStore, settings: Settings, *, now: datetime) -> KeyMaterial:
    return _material(settings, await _ring(store), MasterKeys.from_settings(settings), now)


def _given(settings: Settings) -> tuple[tuple[KeyKind, bool], ...]:
    """Each kind of key, and whether the settings give it."""
    return ("jwt", bool(settings.jwt_keys)), ("digest", bool(settings.token_key))


def _material(
    settings: Settings, ring: list[tuple[RingKey, str]], master: MasterKeys | None, now: datetime
) -> KeyMaterial:
    live = sorted(((key, stored) for key, stored in ring if not key.retired(now)), key=lambda item: _newest(item[0]))
    value = {key.name: _readable(key.name, stored, master) for key, stored in live}
    signing = [key for key, _ in live if key.kind == "jwt"]
    digest = [key for key, _ in live if key.kind == "digest"]
    jwt_keys = dict(settings.jwt_keys)
    for key in signing:
        if jwt_keys.setdefault(key.kid, value[key.name]) != value[key.name]:
            raise KeyMaterialError(
                f"SESSIONGATE_JWT_KEYS names kid {key.kid!r}, which is a generated key's: give that key another kid"
            )
    active_kid = settings.jwt_active_kid or next(iter(settings.jwt_keys), None) or _current(signing, now).kid
    previous = tuple(key.encode() for key in settings.token_key_previous)
    older: tuple[bytes, ...]
    newer: tuple[bytes, ...] = ()
    if settings.token_key:
        digest_key, digest_name = settings.token_key.encode(), "SESSIONGATE_TOKEN_KEY"
        older = (*previous, *(value[key.name].encode() for key in digest))
        tried = [key.name for key in digest]
    else:
        current = _current(digest, now)
        digest_key, digest_name = value[current.name].encode(), current.name
        older = (*previous, *(value[k.name].encode() for k in digest if k.generation < current.generation))
        newer = tuple(value[k.name].encode() for k in digest if k.generation > current.generation)
        tried = [key.name for key in digest if key is not current]
    configured = settings.jwt_keys
    return KeyMaterial(
        jwt_keys=jwt_keys,
        active_kid=active_kid,
        jwt_retires={k.kid: k.retires_at for k in signing if k.retires_at is not None and k.kid not in configured},
        jwt_retired=frozenset(k.kid for k, _ in ring if k.kind == "jwt" and k.retired(now)) - jwt_keys.keys(),
        digest_key=digest_key,
        digest_older=older,
        digest_newer=newer,
        digest_name=digest_name,
        digest_tried=(*(f"SESSIONGATE_TOKEN_KEY_PREVIOUS[{n}]" for n in range(1, len(previous) + 1)), *tried),
        kept_in_clear=tuple(
            key.name
            for key, stored in sorted(live, key=lambda item: _oldest(item[0]))
            if not stored.startswith(ENCRYPTED)
        ),
    )


def _current(live: Sequence[RingKey], now: datetime) -> RingKey:
    """Of live keys of one kind, newest first: the newest that has started (the newest, if none has)."""
    if not live:
        raise KeyMaterialError("no generated key of a kind the settings do not give is live: a gateway start makes one")
    return next((key for key in live if not key.pending(now)), live[0])


def _newest(key: RingKey) -> tuple[bool, int]:
    return key.kind != "jwt", -key.generation


def _oldest(key: RingKey) -> tuple[bool, int]:
    return key.kind != "jwt", key.generation


def _name(kind: KeyKind, generation: int) -> str:
    if kind == "jwt":
        return f"jwt:auto-{generation}"
    return "digest-key" if generation == 1 else f"digest-key-{generation}"


async def _ring(store: KeyMaterialStore) -> list[tuple[RingKey, str]]:
    """The generated keys kept in the database, with their stored values."""
    ring: list[tuple[RingKey, str]] = []
    for kept in await store.keys():
        if (matched := _GENERATED.fullmatch(kept.name)) is None:
            continue  # not a key of the ring: none is kept today, but a later version may keep other secrets here
        kind: KeyKind = "jwt" if matched["jwt"] else "digest"
        key = RingKey(
            name=kept.name,
            kind=kind,
            generation=int(matched["jwt"] or matched["digest"] or 1),
            activates_at=kept.activates_at,
            retires_at=kept.retires_at,
        )
        ring.append((key, kept.value))
    return ring


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


async def _add(
    store: KeyMaterialStore,
    name: str,
    master: MasterKeys | None,
    *,
    now: datetime,
    activates_at: datetime | None = None,
    retiring: Sequence[str] = (),
    retires_at: datetime | None = None,
) -> bool:
    """Keep a new key under ``name`` (encrypted under the master key, if one is given) unless a key has that name
    already, retiring ``retiring`` at ``retires_at`` with it; whether this one was kept."""
    value = secrets.token_urlsafe(48)
    stored = value if master is None else master.encrypt(value)
    return await store.add(name, stored, now=now, activates_at=activates_at, retiring=retiring, retires_at=retires_at)


class KeyRingWatch:
    """Keeps one process's :class:`KeyRing` and :class:`Digester` in step with the ring kept in the database.

    The ring is read every ``key_refresh_interval`` seconds (:meth:`watch`), and for a token naming a ``kid`` the
    process does not hold (:meth:`read_soon`, which becomes the ring's ``reload``); what is read is taken up in place,
    so every service holding the ring or the digester sees it. A rotated-in key starts two intervals after it was
    made, so every process knows it before any signs or digests with it; a token another process signed with a key
    made since this one's last read is verified after one read.

    Args:
        engine: The database holding the ring (read through its key-material store).
        settings: The keys the settings give, the master keys and the interval.
        keys: The process's key ring.
        digester: The process's digester.
        clock: "Now", to tell which keys have started or retired.
        material: What the process started with.
    """

    def __init__(
        self,
        engine: Database,
        settings: Settings,
        keys: KeyRing,
        digester: Digester,
        *,
        clock: Callable[[], datetime],
        material: KeyMaterial,
    ) -> None:
        self._store: KeyMaterialStore = SqlKeyMaterialStore(engine)
        self._settings = settings
        self._keys = keys
        self._digester = digester
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last = time.monotonic()
        self._in_use = _in_use(material)
        self.reads = 0
        """How many reads of the ring began since start-up."""
        keys.reload = self.read_soon

    async def watch(self) -> None:
        """Read the ring every ``key_refresh_interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self._settings.key_refresh_interval)
            async with self._lock:
                await self._read()

    async def read_soon(self) -> None:
        """Read the ring, unless a read began since this was called; at most once per :data:`MIN_READ_INTERVAL`.

        The caller waits for the read: tokens naming made-up keys cost the database one read a second at most,
        however many requests carry them.
        """
        seen = self.reads
        async with self._lock:
            if self.reads != seen:  # a read that began after the caller missed has finished meanwhile
                return
            wait = self._last + MIN_READ_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._read()

    async def _read(self) -> None:
        self.reads += 1
        try:
            material = await _read(self._store, self._settings, now=self._clock())
            self._keys.replace(
                material.jwt_keys, material.active_kid, retires=material.jwt_retires, retired=material.jwt_retired
            )
            self._digester.replace(material.digest_key, older=material.digest_older, newer=material.digest_newer)
        except Exception:
            log.warning("the key ring could not be read again: the keys read before stay in use", exc_info=True)
            return
        finally:
            self._last = time.monotonic()
        in_use = _in_use(material)
        if in_use != self._in_use:
            self._in_use = in_use
            log.info("key ring changed", extra=in_use)


def _in_use(material: KeyMaterial) -> dict[str, object]:
    """What a process does with which key, by name (never a key), for the log line saying it changed."""
    return {
        "signing_kid": material.active_kid,
        "verifying_kids": sorted(material.jwt_keys),
        "digest_key": material.digest_name,
        "tried_digest_keys": list(material.digest_tried),
    }


async def rotate(engine: Database, settings: Settings, kind: KeyKind, *, retire_after: float | None) -> Rotated:
    """Add a generation of ``kind`` to the ring, to replace the live keys of that kind.

    The new key verifies (or is tried) in each process from its next read of the ring, and signs (or digests) two
    ``key_refresh_interval`` after it was made, once every process has read it. The keys it replaces retire
    ``retire_after`` seconds after that, or, if ``None``, once retired explicitly (:func:`retire`); one that already
    retires sooner keeps its time. With a master key the new key is kept encrypted under it, like every generated key.

    Raises:
        KeyRingError: the settings give that kind of key (it rotates there).
        KeyMaterialError: the keys kept cannot be read with the master keys given.
    """
    if kind == "jwt" and settings.jwt_keys:
        raise KeyRingError(
            "the signing keys come from SESSIONGATE_JWT_KEYS: rotate them there "
            "(add a kid, make it SESSIONGATE_JWT_ACTIVE_KID, remove the old one once its tokens have expired)"
        )
    if kind == "digest" and settings.token_key:
        raise KeyRingError(
            "the digest key comes from SESSIONGATE_TOKEN_KEY: rotate it there "
            "(the new one in SESSIONGATE_TOKEN_KEY, the old one in SESSIONGATE_TOKEN_KEY_PREVIOUS)"
        )
    store = SqlKeyMaterialStore(engine)
    # The keys kept must be readable with these master keys (the new one is kept as they are), and the first exist.
    await _load(store, settings, now=datetime.now(UTC))
    master = MasterKeys.from_settings(settings)
    now = datetime.now(UTC)
    starts_at = now + timedelta(seconds=2 * settings.key_refresh_interval)
    retires_at = starts_at + timedelta(seconds=retire_after) if retire_after is not None else None
    while True:
        mine = [key for key, _ in await _ring(store) if key.kind == kind]
        name = _name(kind, max((key.generation for key in mine), default=0) + 1)
        replaced = [key for key in mine if not key.retired(now)]
        # One transaction: the new key and the retirement of those it replaces.
        made = await _add(
            store,
            name,
            master,
            now=now,
            activates_at=starts_at,
            retiring=[key.name for key in replaced],
            retires_at=retires_at,
        )
        if made:
            return Rotated(
                name=name,
                starts_at=starts_at,
                replaced={key.name: _sooner(key.retires_at, retires_at) for key in replaced},
            )
        # A rotation running at the same time took that generation: make the next one.


async def retire(engine: Database, settings: Settings, name: str, *, now: datetime | None = None) -> datetime:
    """Retire the generated key ``name`` now: each process stops using it at its next read of the ring.

    Returns:
        When it retired (earlier, if it had already).

    Raises:
        KeyRingError: no generated key has that name, or it signs (digests) new ones, or is about to.
    """
    now = now or datetime.now(UTC)
    store = SqlKeyMaterialStore(engine)
    ring = [key for key, _ in await _ring(store)]
    key = next((key for key in ring if key.name == name), None)
    if key is None:
        raise KeyRingError(f"no generated key is named {name!r} ('sessiongate key-ring list' names them)")
    if key.retires_at is not None and key.retired(now):
        return key.retires_at
    entry = next(entry for entry in _entries(settings, ring, now) if entry.name == name)
    if entry.in_use or entry.starts_at is not None:
        does = "signs new tokens" if key.kind == "jwt" else "digests new secrets"
        when = "" if entry.starts_at is None else f" from {entry.starts_at.isoformat(timespec='seconds')}"
        raise KeyRingError(
            f"{name} {does}{when}: retiring it would end them. Only a key replaced by another that has started can be "
            f"retired ('sessiongate key-ring rotate {key.kind}' replaces it)"
        )
    await store.retire(name, now=now)
    return now


async def key_ring(engine: Database, settings: Settings, *, now: datetime | None = None) -> list[RingEntry]:
    """Every key of the ring, those the settings give included, and what each does at ``now``; never a value."""
    return _entries(settings, [key for key, _ in await _ring(SqlKeyMaterialStore(engine))], now or datetime.now(UTC))


def _entries(settings: Settings, ring: Sequence[RingKey], now: datetime) -> list[RingEntry]:
    active = settings.jwt_active_kid or next(iter(settings.jwt_keys), None)
    entries = [
        RingEntry(name=f"jwt:{kid}", kind="jwt", in_use=kid == active, setting="SESSIONGATE_JWT_KEYS")
        for kid in settings.jwt_keys
    ]
    for kind, given in _given(settings):
        if kind == "digest":
            if settings.token_key:
                entries.append(RingEntry(name="SESSIONGATE_TOKEN_KEY", kind="digest", in_use=True))
            entries += [
                RingEntry(name=f"SESSIONGATE_TOKEN_KEY_PREVIOUS[{n}]", kind="digest", in_use=False)
                for n in range(1, len(settings.token_key_previous) + 1)
            ]
        mine = sorted((key for key in ring if key.kind == kind), key=lambda key: key.generation)
        live = [key for key in reversed(mine) if not key.retired(now)]
        current = None if given or not live else _current(live, now)
        entries += [
            RingEntry(
                name=key.name,
                kind=kind,
                in_use=key is current,
                # A key the settings override never starts.
                starts_at=key.activates_at if key is not current and not given and key.pending(now) else None,
                retires_at=key.retires_at,
                retired=key.retired(now),
            )
            for key in mine
        ]
    return entries


def _sooner(one: datetime | None, other: datetime | None) -> datetime | None:
    return min(one, other) if one is not None and other is not None else one or other


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


async def rewrap(engine: Database, master: MasterKeys) -> Rewrapped:
    """Bring every key kept in the database under the current master key.

    Each value is replaced only if it is still the one read (compare and set), so processes doing this at once,
    and gateways serving meanwhile, agree; the keys themselves never change, only how they are stored.
    """
    return await _rewrap(SqlKeyMaterialStore(engine), master)


async def _rewrap(store: KeyMaterialStore, master: MasterKeys) -> Rewrapped:
    found: dict[_Found, list[str]] = {"encrypted": [], "reencrypted": [], "current": [], "unreadable": []}
    for name in await store.names():
        found[await _rewrap_one(store, master, name)].append(name)
    return Rewrapped(
        encrypted=tuple(found["encrypted"]),
        reencrypted=tuple(found["reencrypted"]),
        current=tuple(found["current"]),
        unreadable=tuple(found["unreadable"]),
    )


_Found = Literal["encrypted", "reencrypted", "current", "unreadable"]


async def _rewrap_one(store: KeyMaterialStore, master: MasterKeys, name: str) -> _Found:
    while True:
        stored = await store.value(name)
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
        if await store.replace_value(name, old=stored, new=master.encrypt(value), now=datetime.now(UTC)):
            return kind
        # Someone else replaced it meanwhile: look again.
