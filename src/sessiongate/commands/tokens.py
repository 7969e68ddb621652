"""``sessiongate tokens``: long-lived auth tokens of principals (SAYMON's ``auth-token``)."""

from __future__ import annotations

import click

from sessiongate.commands.users import login_option, tenant_option, with_identity

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
    token = with_identity(lambda identity: identity.add_auth_token(tenant=tenant, login=login, replace=replace))
    click.echo(token)


@command.command()
@login_option
@tenant_option
def revoke(login: str, tenant: str) -> None:
    """Revoke every auth token of a principal."""
    count = with_identity(lambda identity: identity.revoke_auth_tokens(tenant=tenant, login=login))
    click.echo(f"revoked {count} auth token{'s' if count != 1 else ''} of {login}")
