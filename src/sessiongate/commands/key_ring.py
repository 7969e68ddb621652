"""``sessiongate key-ring``: the gateway's own keys, that sign JWTs and key the digests of opaque secrets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import click

# What the commands run with is imported when they run: the command line is read (`--help`) without the gateway.
if TYPE_CHECKING:
    from sessiongate.settings import Settings
    from sessiongate.storage.engine import Database
    from sessiongate.tokens.keys import KeyKind, RingEntry, Rotated

__all__ = ("command",)

T = TypeVar("T")


@click.group(name="key-ring")
def command() -> None:
    """The gateway's own keys: those that sign JWTs (jwt) and those that key the digests of opaque secrets (digest).

    Generated keys are kept in the database (encrypted under SESSIONGATE_SECRET_KEY when given); keys given in
    SESSIONGATE_JWT_KEYS and SESSIONGATE_TOKEN_KEY join them. Every gateway process reads the ring every
    SESSIONGATE_KEY_REFRESH_INTERVAL seconds, so changes made here while gateways serve reach them without a restart.
    """


@command.command(name="list")
def list_command() -> None:
    """List the keys, what each does and until when; never a key itself."""
    from sessiongate.tokens.keys import key_ring

    for entry in _run(key_ring):
        click.echo(f"{entry.name:<24} {_state(entry)}")


@command.command(name="rotate")
@click.argument("kind", type=click.Choice(["jwt", "digest"]))
@click.option(
    "--retire-after",
    type=click.FloatRange(min=0),
    help="Seconds after the new key starts until the keys it replaces retire. Default for jwt: once every token they "
    "signed has expired (the longest lifetime of the enabled dialects, the leeway and a refresh interval); for "
    "digest: never, until retired with 'sessiongate key-ring retire' (API keys and auth tokens do not expire).",
)
def rotate_command(kind: KeyKind, retire_after: float | None) -> None:
    """Make a new generated key of KIND (jwt or digest) to replace the live ones.

    Every process verifies with it (or tries it) from its next read of the ring, and signs (or digests) with it two
    refresh intervals after it was made. Tokens and secrets from before keep working until the keys they were made
    with retire; a secret found under a replaced digest key is digested again under the new one when used.
    """
    from sessiongate.tokens.keys import rotate

    async def work(engine: Database, settings: Settings) -> Rotated:
        after = retire_after
        if after is None and kind == "jwt":
            after = settings.key_refresh_interval + _longest_lifetime(settings) + settings.jwt_leeway
        return await rotate(engine, settings, kind, retire_after=after)

    done = _run(work)
    does = "signs" if kind == "jwt" else "digests"
    click.echo(f"{done.name}: new; {does} from {_time(done.starts_at)}")
    for name, retires in done.replaced.items():
        click.echo(f"{name}: {_live(kind)} until {'retired' if retires is None else _time(retires)}")


@command.command(name="retire")
@click.argument("name")
def retire_command(name: str) -> None:
    """Retire the generated key NAME now: every process stops verifying with it (or trying it) at its next read.

    Tokens it signed, and secrets digested under it that were not used since it was replaced, stop working. The
    key that signs (or digests) new ones cannot be retired: rotate it out first.
    """
    from sessiongate.tokens.keys import retire

    retired = _run(lambda engine, settings: retire(engine, settings, name))
    click.echo(f"{name}: retired at {_time(retired)}")


def _run(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    # Imported here: the CLI imports this module while it is being built.
    from sessiongate.commands._environment import run_async, settings_from_env
    from sessiongate.runtime import open_engine
    from sessiongate.tokens.keys import KeyRingError

    settings = settings_from_env()

    async def go() -> T:
        async with open_engine(settings) as engine:
            return await work(engine, settings)

    try:
        result: T = run_async(go())  # type: ignore[assignment]
    except KeyRingError as exc:
        raise click.ClickException(str(exc)) from exc
    return result


def _longest_lifetime(settings: Settings) -> float:
    """The longest a token lives, of the dialects these settings enable: a JWT's ``exp`` is at most that far ahead of
    the moment it was signed (a session's ``expires_at`` is never set further than its ``ttl`` from now)."""
    from sessiongate.dialects import registry

    try:
        dialects = registry.load(settings.dialects, settings.dialect_options)
    except Exception as exc:
        raise click.ClickException(str(getattr(exc, "detail", "") or exc)) from exc
    return max((dialect.expiry_policy().ttl for dialect in dialects), default=0.0)


def _state(entry: RingEntry) -> str:
    if entry.retired and entry.retires_at is not None:
        return f"retired at {_time(entry.retires_at)}"
    setting = f" ({entry.setting})" if entry.setting else ""
    if entry.in_use:
        # Replaced by a key that has not started yet: it still signs until then.
        until = f"; {_live(entry.kind)} until {_time(entry.retires_at)}" if entry.retires_at is not None else ""
        return ("signs" if entry.kind == "jwt" else "digests") + setting + until
    if entry.starts_at is not None:
        does = "signs" if entry.kind == "jwt" else "digests"
        return f"{_live(entry.kind)}; {does} from {_time(entry.starts_at)}"
    if entry.setting or entry.name.startswith("SESSIONGATE_"):
        return _live(entry.kind) + setting
    return f"{_live(entry.kind)} until {'retired' if entry.retires_at is None else _time(entry.retires_at)}"


def _live(kind: KeyKind) -> str:
    """What a key of ``kind`` that no longer signs (digests) still does."""
    return "verifies" if kind == "jwt" else "tried"


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
