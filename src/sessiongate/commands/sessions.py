"""``sessiongate sessions``: sessions of every dialect and tenant, listed, read and revoked as the admin API does —
the same reads, the same revokes, the same audit events (actor ``cli``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click
import msgspec

from sessiongate.commands._shared import as_utc, labelled, with_services
from sessiongate.core.errors import NotFound
from sessiongate.core.keyset import decode_cursor

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.gate import admin
    from sessiongate.runtime import Services
    from sessiongate.sessions.audit import NewEvent

__all__ = ("MAX_LIMIT", "STATES", "command")

STATES = ("live", "revoked", "expired")
"""``sessiongate.gate.admin.STATES``, written out so that reading the command line imports no gateway module (a test
keeps the two equal)."""
MAX_LIMIT = 200
"""``sessiongate.gate.admin.MAX_LIMIT``, written out for the same reason."""
_MOMENT = click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])


@click.group(name="sessions")
def command() -> None:
    """Sessions of every dialect and tenant: list, show, revoke (as the admin API; never a secret)."""


@command.command(name="list")
@click.option("--tenant", help="Only sessions of this tenant.")
@click.option("--dialect", help="Only sessions of this dialect.")
@click.option("--principal", "principal_id", help="Only sessions of this principal id.")
@click.option("--device", "device_id", help="Only sessions of this device id.")
@click.option("--address", "client_address", help="Only sessions opened from this client address.")
@click.option("--state", type=click.Choice(STATES), help="Only live, revoked or expired sessions.")
@click.option("--since", type=_MOMENT, help="Created at or after (UTC if no offset).")
@click.option("--until", type=_MOMENT, help="Created before (UTC if no offset).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True, help="Per page.")
@click.option("--cursor", help="The next page: the cursor the previous one printed last.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (as the admin API gives them).")
def list_sessions(
    *,
    tenant: str | None,
    dialect: str | None,
    principal_id: str | None,
    device_id: str | None,
    client_address: str | None,
    state: admin.State | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List sessions, newest first, in pages that stay stable while sessions come and go."""
    from sessiongate.gate import admin

    where = admin.SessionsFilter(
        tenant=tenant,
        dialect=dialect,
        principal_id=principal_id,
        device_id=device_id,
        client_address=client_address,
        created_after=as_utc(since),
        created_before=as_utc(until),
        state=state,
    )

    async def read(services: Services) -> admin.SessionListing:
        after = decode_cursor(cursor) if cursor is not None else None
        return await admin.list_sessions(services, where, limit=limit, after=after)

    page = with_services(read)
    for session in page.items:
        _show(session, as_json)
    if page.next_cursor is not None:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@command.command(name="show")
@click.option("--id", "session_id", required=True, help="The session's id.")
@click.option("--json", "as_json", is_flag=True, help="As a JSON object (as the admin API gives it).")
def show(session_id: str, as_json: bool) -> None:
    """Show one session, live, revoked or expired, until the sweeper deletes it."""
    from sessiongate.gate import admin

    async def read(services: Services) -> admin.AdminSession:
        session = await services.sessions.store.by_id(session_id)
        if session is None:
            raise NotFound("no such session", field="session_id")
        return admin.view(session, services.clock())

    _show(with_services(read), as_json)


@command.command(name="revoke")
@click.option("--id", "session_id", required=True, help="The session's id.")
def revoke(session_id: str) -> None:
    """End one session at once, in every dialect and every gateway process."""
    from sessiongate.gate import admin

    async def change(services: Services) -> bool:
        _, changed = await admin.revoke_session(services, _by_cli(), session_id)
        return changed

    changed = with_services(change)
    click.echo(f"revoked session {session_id}{'' if changed else ' (already ended)'}")


@command.command(name="revoke-principal")
@click.option("--principal", "principal_id", required=True, help="The principal's id.")
@click.option("--tenant", default="default", show_default=True, help="The principal's tenant.")
@click.option("--except", "except_session_id", help="A session of the principal to keep (e.g. the one in use).")
def revoke_principal(principal_id: str, tenant: str, except_session_id: str | None) -> None:
    """End every live session of a principal, in every dialect, but the one named to keep."""
    from sessiongate.gate import admin

    async def change(services: Services) -> int:
        return await admin.revoke_principal_sessions(
            services, _by_cli(), tenant=tenant, principal_id=principal_id, except_session_id=except_session_id
        )

    count = with_services(change)
    click.echo(f"revoked {count} session{'' if count == 1 else 's'} of {principal_id} in {tenant}")


def _show(session: admin.AdminSession, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(session), sort_keys=True))
        return
    about = labelled(
        (
            ("principal", session.principal_id),
            ("subject", session.subject),
            ("device", session.device.id),
            ("address", session.client_address),
        )
    )
    created, expires = (moment.isoformat(timespec="seconds") for moment in (session.created_at, session.expires_at))
    click.echo(
        f"{session.id}  {session.state:<7} {session.tenant:<16} {session.dialect:<8} {created}  expires {expires}"
        f"  {about}"
    )


def _by_cli() -> NewEvent:
    """Where the CLI's changes come from, as their audit events say."""
    from sessiongate.sessions.audit import NewEvent

    return NewEvent(kind="session.revoked", actor="cli")
