"""What every command starts from: the settings from the environment, checked (a mistake is a :class:`Refusal`
with an :class:`ExitStatus`), and a way to run a coroutine. Below the CLI, so that command modules need not import it.
"""

from __future__ import annotations

import asyncio
from enum import IntEnum
from typing import Literal

import click

from sessiongate.settings import PREFIX, Settings, SettingsError

__all__ = ("DatabaseUse", "ExitStatus", "Refusal", "run_async", "settings_from_env")

DatabaseUse = Literal["existing", "create", "none"]
"""What a command does with the database: works on one that exists, may create it, or does not open it."""


class ExitStatus(IntEnum):
    """Why ``serve`` or a command stopped (the README's Commands section lists them)."""

    FAILED = 1
    """The command was refused or failed (an unknown login, a conflict)."""
    CONFIGURATION = 2
    """An option, a ``SESSIONGATE_*`` variable or the configuration file cannot work (also: click's usage errors)."""
    DATABASE_UNREACHABLE = 3
    """The database cannot be reached, opened or logged in to."""
    DATABASE_NOT_READY = 4
    """The database is not migrated to this version, or an administrative command found no database to work on."""
    CANNOT_LISTEN = 5
    """``serve`` cannot listen on the address and port asked (taken, or not an address of this host)."""


class Refusal(Exception):
    """What :func:`main` says in one line on standard error, exiting with :attr:`status`."""

    def __init__(self, message: str, status: ExitStatus) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def settings_from_env(database: DatabaseUse = "existing", *, announce: bool = True) -> Settings:
    """Settings from the environment, checked as far as they can be without the database; else a clean exit naming
    the bad variable.

    Args:
        database: ``existing``: the command works on a database that must exist already (a SQLite file is never
            created); ``create``: it may create it (``serve``, ``db upgrade``); ``none``: it does not open it.
        announce: Say on standard error which database the command works on (``serve`` logs it instead).
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise Refusal(str(exc), ExitStatus.CONFIGURATION) from exc
    _check_dialect_options(settings)
    if database != "none":
        _check_database(settings, create=database == "create", announce=announce)
    return settings


def run_async(coro: object) -> object:
    """Run a coroutine to completion from a command."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def _check_dialect_options(settings: Settings) -> None:
    # Every command, not only serve: a misspelled dialect or option is said before anything runs without it.
    from litestar.exceptions import ImproperlyConfiguredException

    from sessiongate.dialects import registry

    try:
        registry.check_options(settings.dialect_options)
    except ImproperlyConfiguredException as exc:
        raise Refusal(str(exc.detail), ExitStatus.CONFIGURATION) from exc


def _check_database(settings: Settings, *, create: bool, announce: bool) -> None:
    from sessiongate.storage.urls import sqlite_file

    new = ""
    if (path := sqlite_file(settings.database_url)) is not None:
        if path.is_file():
            pass
        elif create:
            new = " (new)"
        else:
            raise Refusal(
                f"no database at {path} ({PREFIX}DATABASE_URL; default ./sessiongate.db in the current directory): "
                f"run this in the gateway's directory, or set {PREFIX}DATABASE_URL=sqlite:////absolute/path.db to its "
                "database; only `sessiongate serve` and `sessiongate db upgrade` create a new one",
                ExitStatus.DATABASE_NOT_READY,
            )
    if announce:
        click.echo(f"database: {_where(settings.database_url)}{new}", err=True)


def _where(url: str) -> str:
    from sessiongate.storage.urls import where

    return where(url)
