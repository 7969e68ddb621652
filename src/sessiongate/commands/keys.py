"""``sessiongate keys``: the API keys that select a tenant, its server keys and its admin tokens."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from sessiongate.core.errors import GatewayError

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.identity.tenants import AddedKeys, KeyInfo
    from sessiongate.sessions.audit import NewEvent
    from sessiongate.settings import Settings

__all__ = ("command",)


@click.group(name="keys")
def command() -> None:
    """API keys of tenants ("networks" for amity); keys are shown once and stored as keyed digests."""


@command.command(name="add")
@click.option("--tenant", required=True, help="Tenant the key selects (created if it does not exist).")
@click.option("--secure", is_flag=True, help="Make the tenant secure: sessions need an auth token from a server key.")
@click.option(
    "--from-stdin",
    is_flag=True,
    help="Import existing keys instead of drawing new ones: the API key on the first line of standard input, "
    "and for a secure tenant the server key on the second (clients in the field keep their keys).",
)
@click.option(
    "--share-tenant",
    is_flag=True,
    help="Make a network of a tenant that holds principals provisioned with `users add` (refused otherwise): "
    "amity's users then live beside them, never reaching them.",
)
def add(tenant: str, secure: bool, from_stdin: bool, share_tenant: bool) -> None:
    """Create an API key for a tenant (and a server key when the tenant is secure); print them once."""
    api_key = server_key = None
    if from_stdin:
        lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not lines:
            raise click.UsageError("--from-stdin expects the API key on the first line of standard input")
        api_key, server_key = lines[0], (lines[1] if len(lines) > 1 else None)
    try:
        added = asyncio.run(
            _add(_settings(), tenant, secure=secure, api_key=api_key, server_key=server_key, share_tenant=share_tenant)
        )
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    if added.shared:
        click.echo(
            f"warning: tenant {tenant!r} is shared with {added.shared} principal{'' if added.shared == 1 else 's'} "
            "provisioned with `users add`: amity registrations can neither reach them nor use their ids or logins "
            "(409), and admins' listings show their sessions beside the network's.",
            err=True,
        )
    state = "secure" if added.tenant.secure else "not secure"
    click.echo(f"tenant:     {added.tenant.name} ({state})")
    click.echo(f"api key:    {added.api_key}")
    if added.server_key is not None:
        click.echo(f"server key: {added.server_key}")
    click.echo("Keep them now: they are stored only as digests and cannot be shown again.", err=True)


@command.command(name="add-admin")
@click.option("--tenant", required=True, help="The network (a tenant that has an API key) the admin token is for.")
@click.option(
    "--from-stdin",
    is_flag=True,
    help="Import an existing admin token (the first line of standard input) instead of drawing a new one, so the "
    "network's backend keeps the token it has.",
)
def add_admin(tenant: str, from_stdin: bool) -> None:
    """Create an admin token for a network and print it once.

    The network's own backend sends it (``x-admin-token``, or as a bearer token) to revoke every token of one of its
    users; no user session can do that.
    """
    token = None
    if from_stdin:
        lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not lines:
            raise click.UsageError("--from-stdin expects the admin token on the first line of standard input")
        token = lines[0]
    try:
        value = asyncio.run(_add_admin(_settings(), tenant, token))
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"tenant:      {tenant}")
    click.echo(f"admin token: {'(imported)' if token is not None else value}")
    if token is None:
        click.echo("Keep it now: it is stored only as a digest and cannot be shown again.", err=True)


@command.command(name="list")
def list_keys() -> None:
    """List keys: tenant, kind, id, last characters, creation time, state and last use; never the keys themselves."""
    now = datetime.now(UTC)
    for key in asyncio.run(_list(_settings())):
        tenant = f"{key.tenant}{' (secure)' if key.secure else ''}"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never-used"
        click.echo(
            f"{tenant:<40} {key.kind:<7} {key.id}  …{key.hint}  {key.created_at.isoformat(timespec='seconds')}"
            f"  {_state(key, now)}  {used}"
        )


def _state(key: KeyInfo, now: datetime) -> str:
    if key.revoked_at is None and key.expires_at is not None:
        return f"{'expired' if key.expires_at <= now else 'expires'}:{key.expires_at.isoformat(timespec='seconds')}"
    return key.state(now)


@command.command(name="revoke")
@click.option("--id", "key_id", required=True, help="The key's id (`keys list`).")
def revoke(key_id: str) -> None:
    """End a key at once: every process refuses it from the next request on."""
    try:
        info, changed = asyncio.run(_revoke(_settings(), key_id))
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {info.kind} key {info.id} of {info.tenant}{'' if changed else ' (already revoked)'}")


@command.command(name="expire")
@click.option("--id", "key_id", required=True, help="The key's id (`keys list`).")
@click.option(
    "--at",
    "at",
    help="When it expires: an ISO 8601 date-time with an offset (default: now, at once in every process).",
)
def expire(key_id: str, at: str | None) -> None:
    """Make a key expire now, or at a given time."""
    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
            moment.astimezone(UTC)  # stored in UTC: 9999-12-31T23:59:59-14:00 is past a datetime's range there
        except (ValueError, OverflowError):
            moment = None
        if moment is None or moment.tzinfo is None:
            raise click.UsageError(
                "--at must be an ISO 8601 date-time with an offset, in years 1 to 9999 in UTC,"
                " e.g. 2027-01-31T00:00:00Z"
            )
    try:
        info = asyncio.run(_expire(_settings(), key_id, moment))
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    shown = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "-"
    click.echo(f"{info.kind} key {info.id} of {info.tenant} expires {shown}")


def _settings() -> Settings:
    # Imported here: the CLI imports this module while it is itself being imported.
    from sessiongate.commands._environment import settings_from_env

    return settings_from_env()


def _by_cli() -> NewEvent:
    """Where the CLI's changes come from, as their audit events say."""
    from sessiongate.sessions.audit import NewEvent

    return NewEvent(kind="api_key.created", actor="cli")


async def _add(
    settings: Settings, tenant: str, *, secure: bool, api_key: str | None, server_key: str | None, share_tenant: bool
) -> AddedKeys:
    from sessiongate.gate import tenant_keys
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await tenant_keys.add_keys(
            services,
            _by_cli(),
            tenant,
            secure=secure,
            api_key=api_key,
            server_key=server_key,
            share_tenant=share_tenant,
        )


async def _add_admin(settings: Settings, tenant: str, token: str | None) -> str:
    from sessiongate.gate import tenant_keys
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return (await tenant_keys.add_admin_token(services, _by_cli(), tenant, token)).value


async def _list(settings: Settings) -> list[KeyInfo]:
    from sessiongate.gate import tenant_keys
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await tenant_keys.tenant_service(services).list_keys()


async def _revoke(settings: Settings, key_id: str) -> tuple[KeyInfo, bool]:
    from sessiongate.gate import tenant_keys
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await tenant_keys.revoke_key(services, _by_cli(), key_id)


async def _expire(settings: Settings, key_id: str, at: datetime | None) -> KeyInfo:
    from sessiongate.gate import tenant_keys
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await tenant_keys.expire_key(services, _by_cli(), key_id, at)
