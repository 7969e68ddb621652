"""The ``sessiongate`` command line: serve, dialects, db, and the groups in ``sessiongate.commands``."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys

import click

from sessiongate import commands
from sessiongate.settings import Settings, SettingsError

__all__ = ("main", "run_async", "settings_from_env")


def settings_from_env() -> Settings:
    """Settings from the environment, or a clean exit naming the bad variable."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def run_async(coro: object) -> object:
    """Run a coroutine to completion from a command."""
    return asyncio.run(coro)  # type: ignore[arg-type]


@click.group()
@click.version_option(package_name="sessiongate")
def cli() -> None:
    """sessiongate: one session store behind many vendor session APIs."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the gateway (settings from SESSIONGATE_* variables)."""
    import uvicorn

    from sessiongate.dialects import registry
    from sessiongate.observability import configure_logging

    settings = settings_from_env()
    configure_logging(settings.log_level)  # what start-up says before the workers run is logged as they log
    try:
        registry.load(settings.dialects, settings.dialect_options)
    except Exception as exc:
        raise click.ClickException(str(getattr(exc, "detail", "") or exc)) from exc
    # Once here, before the workers start: they never race each other on the schema, the keys are generated (or
    # refused) once, and what start-up has to say is said once.
    run_async(_prepare(settings))
    uvicorn.run(
        # Each server process reads the settings once and gives their limits to the protocol (sessiongate.server).
        "sessiongate.server:create_served_app",
        factory=True,
        http="sessiongate.server:GatewayHttpProtocol",
        ws="none",  # no route is a WebSocket: an upgrade would only hand the connection to a protocol without limits
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        # X-Forwarded-* are the gateway's to read (dialects.base.client_address): uvicorn's own reading would replace
        # the peer before the gateway could check that it is a trusted proxy.
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )


@cli.command()
def dialects() -> None:
    """List installed dialects, whether each is enabled, and its spec."""
    from sessiongate.dialects import registry

    settings = settings_from_env()
    installed = registry.available()
    enabled = set(installed) if "*" in settings.dialects else set(settings.dialects)
    for name, ep in sorted(installed.items()):
        cls = ep.load()
        state = "enabled " if name in enabled else "disabled"
        click.echo(f"{name:<10} {state} {ep.value:<40} {settings.spec_dir / f'{cls.name}.yaml'}")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.option("--revision", default="heads", show_default=True)
def upgrade(revision: str) -> None:
    """Apply migrations to SESSIONGATE_DATABASE_URL."""
    run_async(_upgrade(settings_from_env(), revision))
    click.echo("database is up to date")


async def _prepare(settings: Settings) -> None:
    from sessiongate.runtime import open_services
    from sessiongate.tokens.keys import say_if_kept_in_clear

    async with open_services(settings) as services:
        say_if_kept_in_clear(settings, services.kept_in_clear)


async def _upgrade(settings: Settings, revision: str = "heads") -> None:
    from sessiongate.storage.database import alchemy_config
    from sessiongate.storage.database import upgrade as apply

    engine = alchemy_config(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous).get_engine()
    try:
        await apply(engine, revision)
    finally:
        await engine.dispose()


for _module in pkgutil.iter_modules(commands.__path__):
    cli.add_command(importlib.import_module(f"{commands.__name__}.{_module.name}").command)


def main() -> None:
    """Entry point of the ``sessiongate`` script."""
    from sessiongate.tokens.keys import KeyMaterialError

    try:
        sys.exit(cli())
    except KeyMaterialError as exc:
        # Every command needs the keys: one clear line, as click gives its own errors, rather than a traceback.
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
