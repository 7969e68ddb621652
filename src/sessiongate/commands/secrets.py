"""``sessiongate secrets``: the keys the gateway generates and keeps in the database, and their master key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.settings import Settings
    from sessiongate.tokens.keys import MasterKeys, Rewrapped

__all__ = ("command",)


@click.group(name="secrets")
def command() -> None:
    """Keys the gateway generates and keeps in the database, encrypted under SESSIONGATE_SECRET_KEY when given."""


@command.command(name="rewrap")
def rewrap_command() -> None:
    """Encrypt every key kept in the database under SESSIONGATE_SECRET_KEY.

    Those kept in clear, and those under a SESSIONGATE_SECRET_KEY_PREVIOUS key (the second step of a master key
    rotation); the keys themselves do not change, so tokens and sessions live on. Safe while gateways serve.
    """
    # Imported here: the CLI imports this module while it is being built.
    from sessiongate.commands._environment import run_async, settings_from_env
    from sessiongate.tokens.keys import MasterKeys

    settings = settings_from_env()
    master = MasterKeys.from_settings(settings)
    if master is None:
        raise click.UsageError("set SESSIONGATE_SECRET_KEY (or SESSIONGATE_SECRET_KEY_FILE): the master key to use")
    done: Rewrapped = run_async(_rewrap(settings, master))  # type: ignore[assignment]
    for name in done.encrypted:
        click.echo(f"{name}: encrypted under the current master key (was in clear)")
    for name in done.reencrypted:
        click.echo(f"{name}: re-encrypted under the current master key (was under a previous one)")
    for name in done.current:
        click.echo(f"{name}: already encrypted under the current master key")
    if done.unreadable:
        raise click.ClickException(
            f"{', '.join(done.unreadable)}: encrypted under none of the master keys given; add the one they were "
            "encrypted under to SESSIONGATE_SECRET_KEY_PREVIOUS"
        )


async def _rewrap(settings: Settings, master: MasterKeys) -> Rewrapped:
    from sessiongate.runtime import open_engine
    from sessiongate.tokens.keys import rewrap

    async with open_engine(settings) as engine:
        return await rewrap(engine, master)
