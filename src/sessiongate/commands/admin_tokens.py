"""``sessiongate admin-tokens``: the API credentials services and operators call the gateway's own API with."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sessiongate.core.errors import GatewayError

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.gate.tokens import AddedToken, ApiTokenInfo
    from sessiongate.sessions.audit import NewEvent
    from sessiongate.settings import Settings

__all__ = ("SCOPES", "command")

T = TypeVar("T")

SCOPES = ("introspect", "admin")
"""``sessiongate.gate.tokens.SCOPES``, written out so that reading the command line imports no gateway module (a
test keeps the two equal)."""


@click.group(name="admin-tokens")
def command() -> None:
    """API tokens of the gateway's own API (introspection, revocation); shown once, stored as keyed digests."""


@command.command(name="add")
@click.option(
    "--name",
    required=True,
    help="What the token is for (unique), e.g. the service that calls with it: ASCII letters, digits, "
    "'-', '.', '_' and '~', the first a letter or digit.",
)
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default="introspect",
    show_default=True,
    help="introspect: introspection and revocation of the sessions' credentials; admin: that and the admin API.",
)
@click.option(
    "--from-stdin",
    is_flag=True,
    help="Import an existing token (the first line of standard input, sgt_ and 32 to 200 URL-safe characters) "
    "instead of drawing a new one.",
)
def add(name: str, scope: str, from_stdin: bool) -> None:
    """Create a token and print it once."""
    value = None
    if from_stdin:
        lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not lines:
            raise click.UsageError("--from-stdin expects the token on the first line of standard input")
        value = lines[0]
    added = _run(_add(_settings(), name, scope, value))
    click.echo(f"name:  {added.info.name} ({added.info.scope})")
    click.echo(f"token: {'(imported)' if value is not None else added.value}")
    if value is None:
        click.echo("Keep it now: it is stored only as a digest and cannot be shown again.", err=True)


@command.command(name="list")
def list_tokens() -> None:
    """List tokens: name, scope, first characters, created, last used, revoked; never the tokens themselves."""
    for token in _run(_list(_settings())):
        revoked = f"  revoked {_when(token.revoked_at)}" if token.revoked_at is not None else ""
        click.echo(
            f"{token.name:<32} {token.scope:<10} {token.prefix}…  created {_when(token.created_at)}"
            f"  last used {_when(token.last_used_at)}{revoked}"
        )


@command.command(name="revoke")
@click.option("--name", required=True, help="The token to revoke.")
def revoke(name: str) -> None:
    """Revoke a token: every gateway process refuses it from its next request on."""
    info, changed = _run(_revoke(_settings(), name))
    click.echo(f"{'revoked' if changed else 'already revoked'} {info.name} ({info.prefix}…)")


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "never"


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc


def _settings() -> Settings:
    # Imported here: the CLI imports this module while it is itself being imported.
    from sessiongate.commands._environment import settings_from_env

    return settings_from_env()


def _by_cli() -> NewEvent:
    """Where the CLI's changes come from, as their audit events say."""
    from sessiongate.sessions.audit import NewEvent

    return NewEvent(kind="admin_token.created", actor="cli")


async def _add(settings: Settings, name: str, scope: str, value: str | None) -> AddedToken:
    from sessiongate.gate import api_token_admin
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await api_token_admin.add_token(services, _by_cli(), name, scope, value)


async def _list(settings: Settings) -> list[ApiTokenInfo]:
    from sessiongate.gate import api_token_admin
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await api_token_admin.api_tokens(services).list()


async def _revoke(settings: Settings, name: str) -> tuple[ApiTokenInfo, bool]:
    from sessiongate.gate import api_token_admin
    from sessiongate.runtime import open_services

    async with open_services(settings) as services:
        return await api_token_admin.revoke_token(services, _by_cli(), name)
