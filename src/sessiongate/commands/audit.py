"""``sessiongate audit``: the audit events, newest first, as the admin API lists them."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import TYPE_CHECKING

import click
import msgspec

from sessiongate.commands._shared import as_utc, labelled
from sessiongate.core.errors import GatewayError
from sessiongate.core.keyset import decode_cursor

# What the command runs with is imported when it runs: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.sessions.audit import AuditFilter, AuditPage
    from sessiongate.settings import Settings

__all__ = ("command",)

_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]


@click.command(name="audit")
@click.option("--kind", help="Only events of this kind, e.g. session.revoked.")
@click.option("--actor", help="Only events made by this actor, e.g. admin-token:NAME or cli.")
@click.option("--tenant", help="Only events of this tenant.")
@click.option("--dialect", help="Only events of this dialect.")
@click.option("--principal", "principal_id", help="Only events of this principal id.")
@click.option("--session", "session_id", help="Only events of this session id.")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]), help="At or after (UTC if no offset)."
)
@click.option("--until", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]), help="Before (UTC if no offset).")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Events per page.")
@click.option("--cursor", help="The next page: the cursor the previous one printed last.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line (the events as the admin API gives them)."
)
def command(
    *,
    kind: str | None,
    actor: str | None,
    tenant: str | None,
    dialect: str | None,
    principal_id: str | None,
    session_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List audit events, newest first; never a secret. Events older than the retention are swept."""
    from sessiongate.sessions.audit import AuditFilter

    where = AuditFilter(
        kind=kind,
        actor=actor,
        tenant=tenant,
        dialect=dialect,
        principal_id=principal_id,
        session_id=session_id,
        after=as_utc(since),
        before=as_utc(until),
    )
    from sessiongate.commands._environment import settings_from_env

    settings = settings_from_env()
    try:
        page = asyncio.run(_list(settings, where, limit, cursor))
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    for event in page.items:
        if as_json:
            click.echo(json.dumps(msgspec.to_builtins(event), sort_keys=True))
            continue
        about = labelled(
            (
                ("tenant", event.tenant),
                ("dialect", event.dialect),
                ("principal", event.principal_id),
                ("session", event.session_id),
                ("address", event.client_address),
            )
        )
        detail = json.dumps(event.detail, sort_keys=True) if event.detail else ""
        click.echo(f"{event.at.isoformat(timespec='seconds')}  {event.kind:<22} {event.actor:<24} {about} {detail}")
    if page.next_cursor is not None:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


async def _list(settings: Settings, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
    from sessiongate.runtime import open_services
    from sessiongate.sessions.audit import AuditLog

    async with open_services(settings) as services:
        after = decode_cursor(cursor) if cursor is not None else None
        return await AuditLog(services.runner, services.clock).list(where, limit=limit, after=after)
