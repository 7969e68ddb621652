"""``sessiongate tokens``: long-lived auth tokens of principals (SAYMON's ``auth-token``).

Each change goes through :mod:`sessiongate.gate.auth_token_admin`, as the admin API's do, so both record the same
audit event (actor ``cli`` here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sessiongate.commands._shared import with_services
from sessiongate.commands.users import login_option, tenant_option

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.sessions.audit import NewEvent

__all__ = ("command",)


@click.group(name="tokens")
def command() -> None:
    """Auth tokens: long-lived credentials a principal can log in with instead of a password."""


@command.command()
@login_option
@tenant_option
@click.option("--replace", is_flag=True, help="Revoke the principal's other auth tokens.")
def add(login: str, tenant: str, replace: bool) -> None:
    """Create an auth token and print it; it is shown this once (only a keyed digest is stored)."""
    from sessiongate.gate import auth_token_admin

    token = with_services(
        lambda services: auth_token_admin.add_auth_token(
            services, _by_cli(), tenant=tenant, login=login, replace=replace
        )
    )
    click.echo(token)


@command.command()
@login_option
@tenant_option
def revoke(login: str, tenant: str) -> None:
    """Revoke every auth token of a principal."""
    from sessiongate.gate import auth_token_admin

    count = with_services(
        lambda services: auth_token_admin.revoke_auth_tokens(services, _by_cli(), tenant=tenant, login=login)
    )
    click.echo(f"revoked {count} auth token{'s' if count != 1 else ''} of {login}")


def _by_cli() -> NewEvent:
    """Where the CLI's changes come from, as their audit events say."""
    from sessiongate.sessions.audit import NewEvent

    return NewEvent(kind="auth_token.created", actor="cli")
