"""``sessiongate devices`` (``PortosDialect.commands``): provision the devices users log in to, list and remove them.

The group is portos's: ``sessiongate`` finds it among the enabled dialects, and refuses ``sessiongate devices`` in one
line (exit status 2) where portos is not enabled. Each change goes through :mod:`sessiongate_portos.device_admin`,
as the admin API's do, so both make it with the same checks and record the same audit event (actor ``cli`` here).
"""

from __future__ import annotations

import click

from sessiongate.dialect import by_command, run_command
from sessiongate_portos import device_admin
from sessiongate_portos.context import PortosContext
from sessiongate_portos.devices import ENVIRONMENTS, RegisteredDevice

__all__ = ("devices",)


@click.group(name="devices")
def devices() -> None:
    """Devices of a tenant (portos), each in an environment (a cash register or PDA holds one session at a time)."""


@devices.command()
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
    values = dict(_pair(item) for item in settings)

    async def step(ctx: PortosContext) -> RegisteredDevice:
        origin = by_command("device.created")
        return await device_admin.add_device(
            ctx, origin, tenant=tenant, name=name, env=env, description=description, settings=values
        )

    device = run_command(step)
    click.echo(f"added device {device.name!r} ({device.env}) to tenant {device.tenant!r}")


@devices.command(name="list")
@click.option("--tenant", default="default", show_default=True)
def list_(tenant: str) -> None:
    """List a tenant's devices."""

    async def step(ctx: PortosContext) -> list[RegisteredDevice]:
        return await ctx.devices.list(tenant=tenant)

    for device in run_command(step):
        click.echo(_line(device))


@devices.command()
@click.option("--name", required=True)
@click.option("--tenant", default="default", show_default=True)
def remove(name: str, tenant: str) -> None:
    """Remove a device (its live sessions run until they expire or are deleted)."""

    async def step(ctx: PortosContext) -> RegisteredDevice:
        return await device_admin.remove_device(ctx, by_command("device.removed"), tenant=tenant, name=name)

    run_command(step)
    click.echo(f"removed device {name!r} from tenant {tenant!r}")


def _pair(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--setting")
    return key, value


def _line(device: RegisteredDevice) -> str:
    settings = " ".join(f"{k}={v}" for k, v in sorted(device.settings.items()))
    return "\t".join([device.name, device.env, device.description or "", settings]).rstrip()
