"""The ``sessiongate`` command line: serve, dialects, db, the groups in ``sessiongate.commands``, and those the enabled
dialects add (``DialectPlugin.commands``: portos's ``devices``), found when named.

A mistake gets one line on standard error, ``Error: …``, and an exit status an operator can act on
(:class:`ExitStatus`, listed in the README): never a traceback, never a secret. A dialect's group named where that
dialect is not enabled is such a mistake: exit status 2, as for any setting that cannot work.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pkgutil
import socket
import sys
from typing import TYPE_CHECKING

import click

from sessiongate import commands
from sessiongate.commands._environment import (
    ExitStatus,
    Refusal,
    _where,
    run_async,
    settings_from_env,
)
from sessiongate.settings import PREFIX, Settings, SettingsError, default_pool

if TYPE_CHECKING:
    from sessiongate.storage.database import Migrations, SchemaState
    from sessiongate.storage.engine import Database

__all__ = ("ExitStatus", "Refusal", "main", "run_async", "settings_from_env")

log = logging.getLogger("sessiongate.cli")
LISTEN_BACKLOG = 2048  # uvicorn's


class _WithDialectCommands(click.Group):
    """The core's commands, then the command groups of the enabled dialects: these are found when named (knowing them
    means importing the dialects, which reading the command line, ``--help`` included, never does)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        from sessiongate.commands._dialects import dialect_command

        return dialect_command(ctx, cmd_name)


@click.group(
    cls=_WithDialectCommands,
    epilog="Enabled dialects add command groups of their own (`sessiongate dialects` lists them), e.g. "
    "`sessiongate devices --help`.",
)
@click.version_option(package_name="sessiongate")
def cli() -> None:
    """sessiongate: one session store behind many vendor session APIs."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on (1-65535)."
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option(
    "--server",
    "server_name",
    default="uvicorn",
    show_default=True,
    type=click.Choice(["uvicorn", "granian"]),
    help="HTTP server. uvicorn enforces every edge limit; granian is faster, without eviction past the connection "
    "cap and with one timer for a slow head and an idle connection (README: `serve --server granian`).",
)
def serve(host: str, port: int, workers: int, server_name: str) -> None:
    """Serve the gateway (settings from SESSIONGATE_* variables)."""
    from sessiongate.dialects import registry
    from sessiongate.observability import configure_logging, metrics_directory, serve_metrics
    from sessiongate.storage.database import pool_of

    _default_pool_for(workers)  # before the settings are read: every worker reads the same
    settings = settings_from_env("create", announce=False)  # the "listening" line names it
    configure_logging(settings.log_level)  # what start-up says before the workers run is logged as they log
    try:
        dialects = registry.load(settings.dialects, settings.dialect_options)
        registry.check_no_route_clash(dialects)
        migrations = registry.migrations(dialects)
    except Exception as exc:
        raise Refusal(str(getattr(exc, "detail", "") or exc), ExitStatus.CONFIGURATION) from exc
    if settings.metrics_port == port:
        raise Refusal(
            f"SESSIONGATE_METRICS_PORT is --port ({port}): give the metrics a port of their own",
            ExitStatus.CONFIGURATION,
        )
    # The port first: if it is taken, nothing has started and nothing says it did.
    listener = _listen(host, port)
    # Once here, before the workers start: they never race each other on the schema, the keys are generated (or
    # refused) once, and what start-up has to say is said once.
    run_async(_prepare(settings, migrations))
    with contextlib.ExitStack() as stack:
        # Several server processes keep their counts in a private directory, added up at each scrape (and removed
        # at exit); the metrics port, if any, is served from this process, which outlives every worker.
        directory = stack.enter_context(metrics_directory(workers))
        if settings.metrics_port is not None:
            try:
                stack.callback(serve_metrics(host, settings.metrics_port, settings.metrics_token, directory))
            except OSError as exc:
                raise Refusal(
                    f"SESSIONGATE_METRICS_PORT: cannot listen on {host}:{settings.metrics_port}: {exc.strerror}",
                    ExitStatus.CANNOT_LISTEN,
                ) from None
        where: dict[str, object] = {
            "url": _url_of(listener),
            "server": server_name,
            "workers": workers,
            "database": _where(settings.database_url),
        }
        if not settings.is_sqlite:
            where["pool"] = list(pool_of(settings.db_pool_size, settings.db_max_overflow))  # of each worker
        if settings.metrics_port is not None:
            where["metrics_port"] = settings.metrics_port
        log.info("listening", extra=where)
        if server_name == "granian":
            _run_granian(listener, host, port, workers, settings)
        else:
            _run_uvicorn(listener, workers)


def _run_granian(listener: socket.socket, host: str, port: int, workers: int, settings: Settings) -> None:
    """Serve on granian, which binds the address itself: ``serve``'s socket only proved it free, and is closed."""
    from sessiongate.granian_edge import run_granian
    from sessiongate.server import ServerLimits

    listener.close()
    run_granian(host, port, workers, ServerLimits.from_settings(settings), LISTEN_BACKLOG)


def _run_uvicorn(listener: socket.socket, workers: int) -> None:
    """Serve on the socket ``serve`` bound, as ``uvicorn.run`` does."""
    import uvicorn

    config = uvicorn.Config(
        # Each server process reads the settings once and gives their limits to the protocol (sessiongate.server).
        "sessiongate.server:create_served_app",
        factory=True,
        http="sessiongate.server:GatewayHttpProtocol",
        ws="none",  # no route is a WebSocket: an upgrade would only hand the connection to a protocol without limits
        workers=workers,
        access_log=False,  # the gateway's own (SESSIONGATE_ACCESS_LOG) names routes, not the paths as sent
        log_config=None,  # its loggers pass their lines to the gateway's JSON handler (observability)
        log_level="warning",
        # X-Forwarded-* are the gateway's to read (dialects.base.client_address): uvicorn's own reading would replace
        # the peer before the gateway could check that it is a trusted proxy.
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    try:
        if workers == 1:
            server.run(sockets=[listener])
        else:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:  # Ctrl-C: a stop asked for, after the graceful shutdown
        return
    if workers == 1 and not server.started:
        raise Refusal("the server process could not start (its log above says why)", ExitStatus.FAILED)


@cli.command()
def dialects() -> None:
    """List installed dialects, whether each is enabled, its spec, and the command groups it adds."""
    from sessiongate.dialects import registry

    settings = settings_from_env("none")
    installed = registry.installed()
    enabled = set(registry.enabled_names(settings.dialects, installed))
    for name, ep in sorted(installed.items()):
        cls = ep.load()
        state = "enabled " if name in enabled else "disabled"
        try:
            spec = cls().spec_path(settings.spec_dir)  # a third-party dialect's is in its own package
        except TypeError:  # a class missing a hook or an attribute: `serve` refuses it, this lists it
            spec = settings.spec_dir / f"{name}.yaml"
        groups = ", ".join(sorted(c.name for c in getattr(cls, "commands", ()) if c.name))
        click.echo(f"{name:<10} {state} {ep.value:<40} {spec}" + (f"  commands: {groups}" if groups else ""))


@cli.group()
def db() -> None:
    """Database schema: where it stands, and migrations up or down."""


@db.command()
@click.option("--revision", default="heads", show_default=True)
def upgrade(revision: str) -> None:
    """Apply migrations to SESSIONGATE_DATABASE_URL (a new SQLite file is created): the core's and the enabled
    dialects' own (SESSIONGATE_DIALECTS); a disabled dialect's tables are left alone."""
    settings = settings_from_env("create")
    run_async(_with_engine(settings, _upgrade(revision, _migrations(settings))))
    click.echo("database is up to date" if revision == "heads" else f"database is at {revision}")


@db.command()
def status() -> None:
    """Say the database's revision, this version's head and the migrations pending (the core's and the enabled
    dialects'); exit 4 when some are."""
    state = _schema_state(settings_from_env())
    click.echo(f"current: {', '.join(state.current) or 'none (never migrated)'}")
    click.echo(f"head:    {', '.join(state.heads)}")
    if state.unknown:
        click.echo(f"unknown: {', '.join(state.unknown)} (migrated by a newer version of sessiongate)")
    click.echo(f"pending: {', '.join(state.pending) or 'none'}")
    if state.others:
        click.echo(f"others:  {', '.join(state.others)} (of dialects not enabled: left alone)")
    if not state.up_to_date:
        sys.exit(ExitStatus.DATABASE_NOT_READY)


@db.command()
def history() -> None:
    """List this version's migrations (the core's and the enabled dialects'), the newest first, marking the
    database's current ones."""
    from sessiongate.storage.database import history as migrations

    settings = settings_from_env()
    state = _schema_state(settings)
    current = set(state.current)
    for script in migrations(_migrations(settings)):
        mark = " (current)" if script.revision in current else ""
        click.echo(f"{script.revision}  {' '.join((script.doc or '').split())}{mark}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Undo the migrations after REVISION (``base``: all), the enabled dialects' included. Their tables, and what they
    hold, are dropped: stop the gateway and take a backup first."""
    settings = settings_from_env()
    run_async(_with_engine(settings, _downgrade(revision, _migrations(settings))))
    click.echo(f"database is at {revision}")


async def _prepare(settings: Settings, migrations: Migrations) -> None:
    from sessiongate.runtime import open_services
    from sessiongate.tokens.keys import say_if_kept_in_clear

    async with open_services(settings, migrations=migrations) as services:
        say_if_kept_in_clear(settings, services.kept_in_clear)


async def _with_engine(settings: Settings, work: object) -> object:
    from sessiongate.runtime import engine_config

    engine = engine_config(settings).get_engine()
    try:
        return await work(engine)  # type: ignore[operator]
    finally:
        await engine.dispose()


def _migrations(settings: Settings) -> Migrations:
    """The migrations of the core and of the dialects ``settings`` enables (as ``serve`` loads them)."""
    from sessiongate.dialects import registry

    return registry.migrations(registry.load(settings.dialects, settings.dialect_options))


def _schema_state(settings: Settings) -> SchemaState:
    from sessiongate.storage.database import schema_state

    migrations = _migrations(settings)

    async def go(engine: Database) -> SchemaState:
        return await schema_state(engine, migrations)

    state: SchemaState = run_async(_with_engine(settings, go))  # type: ignore[assignment]
    return state


def _upgrade(revision: str, migrations: Migrations) -> object:
    from sessiongate.storage.database import upgrade as apply

    async def go(engine: Database) -> None:
        await apply(engine, revision, migrations)

    return go


def _downgrade(revision: str, migrations: Migrations) -> object:
    from sessiongate.storage.database import downgrade as undo

    async def go(engine: Database) -> None:
        await undo(engine, revision, migrations)

    return go


def _default_pool_for(workers: int) -> None:
    """Make the default PostgreSQL pool of every worker fit ``workers`` of them (each worker reads the settings from
    the environment it inherits)."""

    def given(name: str) -> bool:
        return bool(os.environ.get(f"{PREFIX}{name}", "").strip() or os.environ.get(f"{PREFIX}{name}_FILE", "").strip())

    if given("DB_POOL_SIZE"):
        return  # the overflow, when not given too, is storage.database.pool_of's: none
    size, overflow = default_pool(workers)
    os.environ[f"{PREFIX}DB_POOL_SIZE"] = str(size)
    if not given("DB_MAX_OVERFLOW"):
        os.environ[f"{PREFIX}DB_MAX_OVERFLOW"] = str(overflow)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn: localhost is 127.0.0.1
    try:
        _, kind, proto, _, address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise Refusal(f"--host {host!r} is not an address of this host: {exc}", ExitStatus.CONFIGURATION) from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart need not wait
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError as exc:
        listener.close()
        raise Refusal(
            f"cannot listen on {_url_of_address(family, host, port)}: {exc.strerror or exc}", ExitStatus.CANNOT_LISTEN
        ) from None
    return listener


def _url_of(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return _url_of_address(listener.family, host, port)


def _url_of_address(family: int, host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if family == socket.AF_INET6 or ":" in host else f"http://{host}:{port}"


for _module in pkgutil.iter_modules(commands.__path__):
    if not _module.name.startswith("_"):  # a private module holds what several command groups share
        cli.add_command(importlib.import_module(f"{commands.__name__}.{_module.name}").command)


def main() -> None:
    """Entry point of the ``sessiongate`` script: a known failure is one line and its :class:`ExitStatus`."""
    try:
        done = cli.main(prog_name="sessiongate", standalone_mode=False)
    except click.UsageError as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
        click.echo(f"Error: {exc.format_message().rstrip('.')}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Refusal as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.status)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(ExitStatus.FAILED)
    except Exception as exc:
        message, status = _explain(exc)
        if status is None:
            if os.environ.get(f"{PREFIX}LOG_LEVEL", "").strip().upper() == "DEBUG":
                raise
            message += f" (set {PREFIX}LOG_LEVEL=DEBUG to see where)"
        click.echo(f"Error: {message}", err=True)
        sys.exit(status or ExitStatus.FAILED)
    sys.exit(done if isinstance(done, int) else 0)


def _explain(exc: Exception) -> tuple[str, ExitStatus | None]:
    from sessiongate.storage.database import DatabaseProblem, DatabaseUnusable, describe_failure
    from sessiongate.tokens.keys import KeyMaterialError

    if isinstance(exc, KeyMaterialError):  # every command needs the keys
        return str(exc), ExitStatus.CONFIGURATION
    problem: DatabaseProblem | None = None
    if isinstance(exc, DatabaseUnusable):
        problem = exc.problem
    else:
        with contextlib.suppress(SettingsError):
            problem = describe_failure(exc, Settings.from_env().database_url)
    if problem is not None:
        status = ExitStatus.DATABASE_UNREACHABLE if problem.unreachable else ExitStatus.DATABASE_NOT_READY
        return problem.message, status
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"unexpected {type(exc).__name__}: {first_line}", None
