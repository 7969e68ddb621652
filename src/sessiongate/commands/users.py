"""``sessiongate users``: provision principals, also while servers run on the same database."""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from sessiongate.core.errors import GatewayError, InvalidRequest

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.core.models import Principal
    from sessiongate.identity.service import IdentityService

__all__ = ("check_password", "command", "read_password", "refuse_piped_password", "with_identity")

T = TypeVar("T")

tenant_option = click.option("--tenant", default="default", show_default=True, help="Tenant of the principal.")
login_option = click.option("--login", required=True, help="Login of the principal.")


def with_identity(work: Callable[[IdentityService], Awaitable[T]]) -> T:
    """Run ``work`` with the identity service of ``SESSIONGATE_*``'s database; a gateway error is a clean exit."""

    # Imported here: the CLI imports this module while it is being built.
    from sessiongate.commands._environment import run_async, settings_from_env
    from sessiongate.runtime import open_services

    async def go() -> T:
        async with open_services(settings_from_env()) as services:
            return await work(services.identity)

    try:
        result: T = run_async(go())  # type: ignore[assignment]
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    return result


PIPE_WAIT = 0.25
"""Seconds ``users add`` waits for what a pipe on its standard input may carry (``printf … |`` starts with it)."""


def read_password(*, from_stdin: bool, login: str) -> str:
    """The password: one line of standard input, or typed twice at a terminal; never a command-line argument. It must
    pass :func:`check_password`."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise click.UsageError("give the password on standard input with --password-stdin")
    if not password:
        raise click.UsageError("the password is empty")
    check_password(password, login=login)
    return password


def check_password(password: str, *, login: str) -> None:
    """Refuse a password shorter than ``SESSIONGATE_PASSWORD_MIN_LENGTH``, equal to the login, or (unless
    ``SESSIONGATE_PASSWORD_CHECK_COMMON=false``) one of the most common passwords: zxcvbn's list of 30 000, drawn from
    leaked password sets, compared without case. Only passwords the CLI sets are checked; dialect logins are not."""
    from sessiongate.commands._environment import settings_from_env
    from sessiongate.identity.passwords import policy_problem

    settings = settings_from_env("none")
    problem = policy_problem(
        password, login=login, min_length=settings.password_min_length, check_common=settings.password_check_common
    )
    if problem is not None:
        raise click.UsageError(problem)


def refuse_piped_password() -> None:
    """Refuse to go on without ``--password-stdin`` when standard input is a pipe or a file carrying something: a
    password given that way would be dropped, and the principal made without one."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # no descriptor: closed, or a test's buffer
        return
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode):
        carries = os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)
    elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        readable, _, _ = select.select([fd], [], [], PIPE_WAIT)
        carries = bool(readable) and bool(os.read(fd, 1))  # readable with nothing to read: the end, an empty pipe
    else:
        return  # a terminal (typing nothing), /dev/null
    if carries:
        raise click.UsageError(
            "standard input carries something, but without --password-stdin it would be dropped and the principal "
            "made without a password: add --password-stdin (or give no input to make one without a password)"
        )


@click.group(name="users")
def command() -> None:
    """Principals: who can log in through the dialects."""


@command.command()
@login_option
@click.option("--id", "principal_id", help="Public id (what sessions carry); a new UUID by default.")
@click.option("--email", help="E-mail address.")
@click.option("--name", "display_name", help="Display name.")
@click.option("--role", "roles", multiple=True, help="A role (repeatable).")
@click.option("--permission", "permissions", multiple=True, help="A permission (repeatable).")
@tenant_option
@click.option("--password-stdin", is_flag=True, help="Read a password from the first line of standard input.")
def add(
    *,
    login: str,
    principal_id: str | None,
    email: str | None,
    display_name: str | None,
    roles: tuple[str, ...],
    permissions: tuple[str, ...],
    tenant: str,
    password_stdin: bool,
) -> None:
    """Add a principal and print its id (without --password-stdin it cannot log in by password)."""
    from sessiongate.identity.service import check_addressable_id
    from sessiongate.identity.tenants import TenantService

    try:
        check_addressable_id(principal_id)
    except InvalidRequest as exc:
        raise click.UsageError(exc.message) from exc
    if password_stdin:
        password: str | None = read_password(from_stdin=True, login=login)
    else:
        refuse_piped_password()
        password = None

    async def work(identity: IdentityService) -> tuple[Principal, bool]:
        principal = await identity.add_principal(
            tenant=tenant,
            login=login,
            principal_id=principal_id,
            email=email,
            display_name=display_name,
            roles=roles,
            permissions=permissions,
            password=password,
        )
        tenants = TenantService(identity.engine, identity.digester, identity.clock, identity.runner)
        return principal, await tenants.is_network(tenant)

    principal, in_network = with_identity(work)
    if in_network:
        click.echo(
            f"warning: tenant {tenant!r} is an amity network: this principal is not one of its users; amity "
            "registrations can neither reach it nor use its id or login (409).",
            err=True,
        )
    click.echo(principal.id)


@command.command(name="list")
@click.option("--tenant", help="Only this tenant's principals.")
def list_(tenant: str | None) -> None:
    """List principals (never their password hashes or tokens)."""
    found = with_identity(lambda identity: identity.list(tenant=tenant))
    click.echo(_table(found))


@command.command()
@login_option
@tenant_option
def disable(login: str, tenant: str) -> None:
    """Disable a principal and end all its sessions."""
    with_identity(lambda identity: identity.disable(tenant=tenant, login=login, actor="cli"))
    click.echo(f"disabled {login}")


@command.command()
@login_option
@tenant_option
def enable(login: str, tenant: str) -> None:
    """Enable a disabled principal."""
    with_identity(lambda identity: identity.enable(tenant=tenant, login=login))
    click.echo(f"enabled {login}")


@command.command()
@login_option
@tenant_option
def delete(login: str, tenant: str) -> None:
    """Delete a principal and its auth tokens, and end all its sessions."""
    with_identity(lambda identity: identity.delete(tenant=tenant, login=login))
    click.echo(f"deleted {login}")


@command.command(name="set-password")
@login_option
@tenant_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def set_password(login: str, tenant: str, password_stdin: bool) -> None:
    """Set a principal's password and end all its sessions."""
    password = read_password(from_stdin=password_stdin, login=login)
    with_identity(lambda identity: identity.set_password(tenant=tenant, login=login, password=password))
    click.echo(f"password of {login} set; its sessions ended")


COLUMNS = ("tenant", "id", "login", "email", "name", "roles", "permissions", "state", "created")


def _table(found: list[Principal]) -> str:
    rows = [
        (
            p.tenant,
            p.id,
            p.login,
            p.email or "-",
            p.display_name or "-",
            ",".join(p.roles) or "-",
            ",".join(p.permissions) or "-",
            "disabled" if p.disabled else "enabled",
            p.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for p in found
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(COLUMNS, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [COLUMNS, *rows]
    )
