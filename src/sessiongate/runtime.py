"""The process's services, built once from settings: used by the app's lifespan and by CLI commands alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sessiongate.identity.service import IdentityService
from sessiongate.identity.throttle import CreateBudget, ThrottlePolicy
from sessiongate.sessions.audit import AuditLog
from sessiongate.sessions.service import Clock, SessionService, utc_now
from sessiongate.settings import Settings
from sessiongate.storage.database import CORE, Migrations, alchemy_config, require_schema, sqlite_pragmas_for, upgrade
from sessiongate.storage.engine import Database, DatabaseConfig
from sessiongate.storage.refresh_store import SqlRefreshStore
from sessiongate.storage.runner import StatementRunner, runner_for
from sessiongate.storage.store import SqlSessionStore
from sessiongate.tokens.jwt import KeyRing
from sessiongate.tokens.keys import KeyRingWatch, load_key_material
from sessiongate.tokens.opaque import Digester

__all__ = ("Services", "engine_config", "open_engine", "open_services")


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler or a command may need, sharing one engine."""

    settings: Settings
    engine: Database
    clock: Clock
    digester: Digester
    keys: KeyRing
    sessions: SessionService
    runner: StatementRunner
    identity: IdentityService
    kept_in_clear: tuple[str, ...]
    """Names of the generated keys in use that the database keeps unencrypted (no master key was given)."""
    create_budget: CreateBudget | None
    """Creates per client address of the routes that need no password; ``None`` when the budget is off."""
    key_ring: KeyRingWatch
    """Keeps ``keys`` and ``digester`` in step with the key ring kept in the database (rotations by other processes)."""


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    db: DatabaseConfig | None = None,
    migrate: bool | None = None,
    migrations: Migrations = CORE,
) -> AsyncIterator[Services]:
    """Connect, migrate when configured, load the keys and build the services; dispose the engine afterwards.

    Meanwhile the key ring is read again every ``key_refresh_interval`` seconds, so a rotation made by another process
    (``sessiongate key-ring rotate``) is taken up without a restart.

    Args:
        settings: The gateway's settings.
        clock: "Now", for every service.
        db: An existing advanced-alchemy config to share its engine (the app's); a new one otherwise.
        migrate: Apply migrations first; default: ``settings.migrate_at_start``.
        migrations: The migrations applied or required: the core's and the enabled dialects' branches (the app's);
            default: the core's alone (a command that touches no dialect's table).

    Raises:
        KeyMaterialError: the keys kept in the database cannot be read with the master keys given.
        DatabaseUnusable: not migrating, the database is not migrated to this version.
    """
    synchronous = settings.sqlite_synchronous
    engine = (db or engine_config(settings)).get_engine()
    runner = runner_for(engine, settings.database_url, sqlite_pragmas_for(synchronous))
    try:
        if settings.migrate_at_start if migrate is None else migrate:
            await upgrade(engine, migrations=migrations)
        else:
            await require_schema(engine, settings.database_url, migrations)
        material = await load_key_material(engine, settings, now=clock())
        digester = Digester(material.digest_key, older=material.digest_older, newer=material.digest_newer)
        keys = KeyRing(
            material.jwt_keys,
            material.active_kid,
            settings.jwt_leeway,
            retires=material.jwt_retires,
            retired=material.jwt_retired,
        )
        key_ring = KeyRingWatch(engine, settings, keys, digester, clock=clock, material=material)
        sessions = SessionService(SqlSessionStore(engine, runner), keys, digester, clock)
        sessions.audit = AuditLog(runner, clock)  # sessions created and ended, logins: audit events
        sessions.refresh_tokens = SqlRefreshStore(runner)
        watching = asyncio.create_task(key_ring.watch())
        try:
            yield Services(
                settings=settings,
                engine=engine,
                clock=clock,
                digester=digester,
                keys=keys,
                sessions=sessions,
                runner=runner,
                identity=IdentityService(
                    engine,
                    sessions,
                    digester,
                    clock,
                    _throttle_policy(settings),
                    runner=runner,
                    password_workers=settings.password_workers,
                    password_queue=settings.password_queue,
                ),
                kept_in_clear=material.kept_in_clear,
                create_budget=_create_budget(settings, clock),
                key_ring=key_ring,
            )
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    finally:
        await runner.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Database]:
    """The database alone, migrated when configured, for a command that needs no services (nor their keys loaded);
    the engine is disposed afterwards."""
    engine = engine_config(settings).get_engine()
    try:
        if settings.migrate_at_start:
            await upgrade(engine)
        else:
            await require_schema(engine, settings.database_url)
        yield engine
    finally:
        await engine.dispose()


def engine_config(settings: Settings) -> DatabaseConfig:
    """The advanced-alchemy config of ``settings``'s database: its SQLite tuning or its PostgreSQL pool."""
    return alchemy_config(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )


def _throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        max_principal_failures=settings.login_max_failures,
        max_address_failures=settings.login_max_address_failures,
        window_seconds=settings.login_lock_seconds,
        lock_seconds=settings.login_lock_seconds,
    )


def _create_budget(settings: Settings, clock: Clock) -> CreateBudget | None:
    if settings.create_rate_limit == 0:
        return None
    return CreateBudget(settings.create_rate_limit, settings.create_rate_window, lambda: clock().timestamp())
