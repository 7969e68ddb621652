"""``sessiongate keys``: the API keys that select a tenant, its server keys and its admin tokens."""

from __future__ import annotations

import asyncio
import sys

import click

from sessiongate.core.errors import GatewayError, InvalidRequest
from sessiongate.identity.tenants import AddedKeys, KeyInfo, TenantService
from sessiongate.runtime import open_services
from sessiongate.settings import Settings, SettingsError

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
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"tenant:      {tenant}")
    click.echo(f"admin token: {'(imported)' if token is not None else value}")
    if token is None:
        click.echo("Keep it now: it is stored only as a digest and cannot be shown again.", err=True)


@command.command(name="list")
def list_keys() -> None:
    """List keys: tenant, kind, id, last characters and creation time; never the keys themselves."""
    for key in asyncio.run(_list(_settings())):
        tenant = f"{key.tenant}{' (secure)' if key.secure else ''}"
        click.echo(f"{tenant:<40} {key.kind:<7} {key.id}  …{key.hint}  {key.created_at.isoformat(timespec='seconds')}")


def _settings() -> Settings:
    # Not sessiongate.cli's helper: the CLI imports this module while it is itself being imported.
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


async def _add(
    settings: Settings, tenant: str, *, secure: bool, api_key: str | None, server_key: str | None, share_tenant: bool
) -> AddedKeys:
    async with open_services(settings) as services:
        tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
        return await tenants.add_keys(
            tenant, secure=secure, api_key=api_key, server_key=server_key, share_tenant=share_tenant
        )


async def _add_admin(settings: Settings, tenant: str, token: str | None) -> str:
    async with open_services(settings) as services:
        tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
        return await tenants.add_admin_token(tenant, token=token)


async def _list(settings: Settings) -> list[KeyInfo]:
    async with open_services(settings) as services:
        tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
        return await tenants.list_keys()
