"""What several command groups share: running a step with the gateway's services (a refusal is one line), listings'
``name=value`` pairs, and times read without an offset as UTC."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click

from sessiongate.core.errors import GatewayError

# The services are imported when a command runs: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.runtime import Services

__all__ = ("as_utc", "labelled", "with_services")

T = TypeVar("T")


def with_services(step: Callable[[Services], Awaitable[T]]) -> T:
    """``step`` run with the services of the database the environment names; a refusal is ``Error: …``, exit 1."""
    from sessiongate.commands._environment import settings_from_env
    from sessiongate.runtime import open_services

    settings = settings_from_env()

    async def main() -> T:
        async with open_services(settings) as services:
            return await step(services)

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc


def labelled(pairs: Iterable[tuple[str, object | None]]) -> str:
    """``name=value`` for each pair whose value is known, space-separated."""
    return " ".join(f"{name}={value}" for name, value in pairs if value is not None)


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment``, read as UTC when it was given without an offset."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
