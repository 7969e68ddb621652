"""``sessiongate devices``: provision the devices users log in to (PORTOS), list and remove them.

Each change goes through :mod:`sessiongate.gate.device_admin`, as the admin API's do, so both make it with the same
checks and record the same audit event (actor ``cli`` here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sessiongate.commands._shared import with_services

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.identity.devices import RegisteredDevice
    from sessiongate.sessions.audit import NewEvent

__all__ = ("ENVIRONMENTS", "command")

ENVIRONMENTS = ("BackOffice", "CashRegister", "PDA", "Tool")
"""``sessiongate.identity.devices.ENVIRONMENTS``, written out so that reading the command line imports no gateway
module (a test keeps the two equal)."""


@click.group(name="devices")
def command() -> None:
    """Devices of a tenant, each in an environment (a cash register or PDA holds one session at a time)."""


@command.command()
@click.option(
    "--name",
    required=True,
    help="The device's name, unique in the tenant (what users log in to): printable, not '.' or '..', no '/'.",
)
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="The device environment.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--description", default=None, help="A description shown to clients.")
@click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE", help="A device setting (repeatable).")
def add(name: str, env: str, tenant: str, description: str | None, settings: tuple[str, ...]) -> None:
    """Provision a device."""
    from sessiongate.gate import device_admin

    values = dict(_pair(item) for item in settings)
    device = with_services(
        lambda services: device_admin.add_device(
            services, _by_cli(), tenant=tenant, name=name, env=env, description=description, settings=values
        )
    )
    click.echo(f"added device {device.name!r} ({device.env}) to tenant {device.tenant!r}")


@command.command(name="list")
@click.option("--tenant", default="default", show_default=True)
def list_(tenant: str) -> None:
    """List a tenant's devices."""
    from sessiongate.gate import device_admin

    for device in with_services(lambda services: device_admin.devices(services).list(tenant=tenant)):
        click.echo(_line(device))


@command.command()
@click.option("--name", required=True)
@click.option("--tenant", default="default", show_default=True)
def remove(name: str, tenant: str) -> None:
    """Remove a device (its live sessions run until they expire or are deleted)."""
    from sessiongate.gate import device_admin

    with_services(lambda services: device_admin.remove_device(services, _by_cli(), tenant=tenant, name=name))
    click.echo(f"removed device {name!r} from tenant {tenant!r}")


def _pair(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--setting")
    return key, value


def _line(device: RegisteredDevice) -> str:
    settings = " ".join(f"{k}={v}" for k, v in sorted(device.settings.items()))
    return "\t".join([device.name, device.env, device.description or "", settings]).rstrip()


def _by_cli() -> NewEvent:
    """Where the CLI's changes come from, as their audit events say."""
    from sessiongate.sessions.audit import NewEvent

    return NewEvent(kind="device.created", actor="cli")
