"""``sessiongate devices``: provision the devices users log in to (PORTOS), list and remove them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click

from sessiongate.core.errors import GatewayError
from sessiongate.identity.devices import ENVIRONMENTS, Devices, RegisteredDevice

__all__ = ("command",)

T = TypeVar("T")


@click.group(name="devices")
def command() -> None:
    """Devices of a tenant, each in an environment (a cash register or PDA holds one session at a time)."""


@command.command()
@click.option("--name", required=True, help="The device's name, unique in the tenant (what users log in to).")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="The device environment.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--description", default=None, help="A description shown to clients.")
@click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE", help="A device setting (repeatable).")
def add(name: str, env: str, tenant: str, description: str | None, settings: tuple[str, ...]) -> None:
    """Provision a device."""
    values = dict(_pair(item) for item in settings)
    device = _run(
        lambda devices, now: devices.add(
            tenant=tenant, name=name, env=env, now=now(), description=description, settings=values
        )
    )
    click.echo(f"added device {device.name!r} ({device.env}) to tenant {device.tenant!r}")


@command.command(name="list")
@click.option("--tenant", default="default", show_default=True)
def list_(tenant: str) -> None:
    """List a tenant's devices."""
    for device in _run(lambda devices, _: devices.list(tenant=tenant)):
        click.echo(_line(device))


@command.command()
@click.option("--name", required=True)
@click.option("--tenant", default="default", show_default=True)
def remove(name: str, tenant: str) -> None:
    """Remove a device (its live sessions run until they expire or are deleted)."""
    _run(lambda devices, _: devices.remove(tenant=tenant, name=name))
    click.echo(f"removed device {name!r} from tenant {tenant!r}")


def _pair(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--setting")
    return key, value


def _line(device: RegisteredDevice) -> str:
    settings = " ".join(f"{k}={v}" for k, v in sorted(device.settings.items()))
    return "\t".join([device.name, device.env, device.description or "", settings]).rstrip()


def _run(work: Callable[[Devices, Callable[[], datetime]], Awaitable[T]]) -> T:
    from sessiongate.cli import run_async, settings_from_env
    from sessiongate.runtime import open_services

    async def main() -> T:
        async with open_services(settings_from_env()) as services:
            return await work(Devices(services.runner), services.sessions.now)

    try:
        return run_async(main())  # type: ignore[return-value]
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
