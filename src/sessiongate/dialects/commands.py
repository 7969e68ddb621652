"""How a dialect's command group (``DialectPlugin.commands``) runs its work: with the dialect's own context, over the
services of the database the environment names, as ``sessiongate``'s own commands run theirs.

The command line finds a dialect's group when it is named (``sessiongate devices …``), among the enabled dialects
(``SESSIONGATE_DIALECTS``), and hands it, as click's context object, a :class:`CommandScope`: the dialect and how to
open the services. A command then calls :func:`run_command` with a coroutine function of the dialect's context (what
its handlers are given as ``ctx``). The database is held to the core's migrations and the dialect's own branch (its
tables must be there: migrated at start when ``SESSIONGATE_AUTO_MIGRATE`` says so, as for every command).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from sessiongate.core.audit_store import Kind, NewEvent
from sessiongate.core.errors import GatewayError
from sessiongate.dialects.context import DialectContext

if TYPE_CHECKING:
    from sessiongate.dialects.base import DialectPlugin
    from sessiongate.runtime import Services

__all__ = ("CommandScope", "by_command", "run_command")

T = TypeVar("T")
C = TypeVar("C", bound=DialectContext[Any])


@dataclass(frozen=True, slots=True)
class CommandScope:
    """What the command line hands a dialect's command group (click's context object)."""

    dialect: DialectPlugin[Any]
    """The enabled dialect whose command runs, with its options."""
    services: Callable[[], AbstractAsyncContextManager[Services]]
    """Opens the gateway's services on the database the environment names (it must exist), held to the core's
    migrations and the dialect's branch; says which database on standard error, as every command does."""


def run_command(step: Callable[[C], Awaitable[T]]) -> T:
    """``step`` run with the context of the dialect whose command is running (its ``Context``: what its handlers are
    given as ``ctx``), over the gateway's services; they are closed afterwards.

    Raises:
        click.ClickException: ``step`` raised a :class:`GatewayError` (a refusal): ``Error: <its message>``, exit 1.
        RuntimeError: not called from a dialect's command run by ``sessiongate``.
    """
    scope = click.get_current_context().find_object(CommandScope)
    if scope is None:
        msg = "run_command runs a dialect's command of the sessiongate command line, and none is running"
        raise RuntimeError(msg)

    async def main() -> T:
        async with scope.services() as services:
            # The command's dialect is the one bound: its context is of the class its commands are written for.
            context = cast("C", scope.dialect.bind(services))
            try:
                return await step(context)
            finally:
                scope.dialect.unbind()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc


def by_command(kind: Kind) -> NewEvent:
    """The audit event of a change made from the command line (actor ``cli``), as the core's commands record theirs."""
    return NewEvent(kind=kind, actor="cli")
