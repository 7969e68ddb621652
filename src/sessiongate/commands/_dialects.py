"""The command groups the enabled dialects add to ``sessiongate`` (``DialectPlugin.commands``: portos's ``devices``).

A dialect's group is found when it is named, not listed by ``sessiongate --help``: knowing it means importing the
dialect, and reading the command line imports none (``tests/integration/test_cli_help.py``). ``sessiongate
dialects`` lists each installed dialect's groups. A group of an installed dialect that is not enabled is refused in
one line, exit status 2 (:attr:`ExitStatus.CONFIGURATION`: what would make it work is the setting that enables it).
"""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

import click

from sessiongate.commands._environment import ExitStatus, Refusal, settings_from_env
from sessiongate.settings import PREFIX

if TYPE_CHECKING:
    from sessiongate.runtime import Services
    from sessiongate.storage.database import Migrations

__all__ = ("dialect_command",)


def dialect_command(ctx: click.Context, name: str) -> click.Command | None:
    """The command group ``name`` of an enabled dialect, set up to run with that dialect (click's context object:
    a :class:`~sessiongate.dialects.commands.CommandScope`); ``None`` when no installed dialect has one so named.

    Raises:
        Refusal: the settings cannot work, or the dialect whose group it is is not enabled (exit status 2).
    """
    from litestar.exceptions import ImproperlyConfiguredException

    from sessiongate.dialects import registry
    from sessiongate.dialects.commands import CommandScope

    settings = settings_from_env("none")
    try:
        dialects = registry.load(settings.dialects, settings.dialect_options)
        for dialect in dialects:
            if command := next((c for c in dialect.commands if c.name == name), None):
                migrations = registry.migrations([dialect])  # the core's, and the dialect's own branch
                ctx.obj = CommandScope(dialect=dialect, services=functools.partial(_services, migrations))
                return command
    except ImproperlyConfiguredException as exc:
        raise Refusal(str(exc.detail), ExitStatus.CONFIGURATION) from exc
    enabled = {dialect.name for dialect in dialects}
    for other, entry_point in sorted(registry.installed().items()):
        if other not in enabled and name in _commands_of(entry_point):
            msg = f"`sessiongate {name}` is a command of the {other} dialect, which {PREFIX}DIALECTS does not enable"
            msg += f": enable {other} to use it"
            raise Refusal(msg, ExitStatus.CONFIGURATION)
    return None


def _commands_of(entry_point: EntryPoint) -> set[str]:
    """The names of the command groups of an installed dialect (none for one that cannot be loaded: it is refused,
    with its error, where it is enabled)."""
    from sessiongate.dialects.base import DialectPlugin

    try:
        cls = entry_point.load()
    except Exception:  # noqa: BLE001 - a broken dialect names no command here
        return set()
    if not (isinstance(cls, type) and issubclass(cls, DialectPlugin)):
        return set()
    return {command.name for command in cls.commands if command.name is not None}


def _services(migrations: Migrations) -> AbstractAsyncContextManager[Services]:
    """The services a dialect's command runs with: on the database the environment names, which must exist (said on
    standard error, as every command says it), held to ``migrations``: the core's and the dialect's own branch."""
    from sessiongate.runtime import open_services

    return open_services(settings_from_env(), migrations=migrations)
