"""Find dialects through the ``sessiongate.dialects`` entry-point group and enable the configured ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.dialects.base import DialectPlugin
from sessiongate.settings import PREFIX
from sessiongate.storage.database import Migrations, MigrationsInvalid

__all__ = (
    "GROUP",
    "available",
    "check_no_route_clash",
    "check_options",
    "enabled_names",
    "installed",
    "load",
    "migrations",
    "opt_in",
)

GROUP = "sessiongate.dialects"


def installed() -> dict[str, EntryPoint]:
    """Every installed dialect, by name."""
    return _entry_points()


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> dict[str, EntryPoint]:
    """The installed dialects ``*`` enables, by name: all but those that are ``opt_in``."""
    return {name: ep for name, ep in installed().items() if not _opt_in(ep)}


def opt_in() -> dict[str, EntryPoint]:
    """The installed dialects enabled only when named, by name (``DialectPlugin.opt_in``)."""
    return {name: ep for name, ep in _entry_points().items() if _opt_in(ep)}


def enabled_names(enabled: Sequence[str], found: Mapping[str, EntryPoint] | None = None) -> list[str]:
    """The names ``enabled`` (``SESSIONGATE_DIALECTS``) enables: ``*`` is every installed dialect but the opt-in
    ones, each name after it adds its dialect (an opt-in one included)."""
    found = installed() if found is None else found
    if "*" not in enabled:
        return list(dict.fromkeys(enabled))
    everyone = [name for name in sorted(found) if not _opt_in(found[name])]
    return list(dict.fromkeys([*everyone, *(name for name in enabled if name != "*")]))


def load(enabled: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> list[DialectPlugin]:
    """Instantiate the enabled dialects (``*`` = all installed but the opt-in ones, :func:`enabled_names`) with their
    typed options.

    Raises:
        ImproperlyConfiguredException: an unknown dialect name, options given for one (see :func:`check_options`),
            an entry point whose class has another name, options that do not fit the dialect's ``Options``, or a
            class that misses a hook or an attribute.
    """
    found = opt_in() | available()  # every installed dialect: those "*" enables and those enabled only when named
    names = enabled_names(enabled, found)
    if unknown := [n for n in names if n not in found]:
        msg = f"unknown dialect(s) {', '.join(unknown)}; {_listing(found)}"
        raise ImproperlyConfiguredException(msg)
    check_options(options, found)
    plugins: list[DialectPlugin] = []
    for name in names:
        cls = _dialect_class(name, found[name])
        try:
            opts = msgspec.convert(dict(options.get(name, {})), cls.Options, strict=False)
        except (msgspec.ValidationError, ValueError) as exc:
            msg = f"invalid options for dialect {name!r}: {exc}"
            raise ImproperlyConfiguredException(msg) from exc
        try:
            plugins.append(cls(opts))
        except TypeError as exc:  # an abstract hook not implemented, a class attribute not set
            msg = f"dialect {name!r} cannot start: {exc}"
            raise ImproperlyConfiguredException(msg) from exc
    return plugins


def check_options(options: Mapping[str, Mapping[str, Any]], installed: Mapping[str, EntryPoint] | None = None) -> None:
    """Refuse options no dialect would read: given for a name that is no installed dialect, or under a name that is
    none of the dialect's options. Either is a misspelling that would otherwise leave them silently unread. Options of
    an installed dialect that is not enabled are allowed (and their names checked all the same).

    Args:
        options: The options by dialect name, as the settings hold them (``Settings.dialect_options``).
        installed: The installed dialects, by name (default: :func:`installed`).

    Raises:
        ImproperlyConfiguredException: naming what was given and listing what would be read: the installed dialects,
            or the dialect's options.
    """
    if not options:
        return
    installed = _entry_points() if installed is None else installed
    if unknown := sorted(set(options) - set(installed)):
        which = "is no installed dialect" if len(unknown) == 1 else "are no installed dialects"
        msg = (
            f"options given for {', '.join(unknown)}, which {which} "
            f"({PREFIX}<DIALECT>__<OPTION> or [dialect_options.<dialect>]); "
            f"{_listing(installed, opt_in_first=True)}"
        )
        raise ImproperlyConfiguredException(msg)
    for name, given in sorted(options.items()):
        cls = _dialect_class(name, installed[name])
        known = sorted(field.encode_name for field in msgspec.structs.fields(cls.Options))
        if unknown := sorted(key for key in given if key not in known):
            msg = (
                f"invalid options for dialect {name!r}: no option named "
                f"{', '.join(key + _did_you_mean(key, known) for key in unknown)} "
                f"({PREFIX}{name.upper()}__<OPTION> or [dialect_options.{name}]); its options: {', '.join(known)}"
            )
            raise ImproperlyConfiguredException(msg)


def check_no_route_clash(plugins: Sequence[DialectPlugin]) -> None:
    """Fail when two enabled dialects claim the same method and path.

    Raises:
        ImproperlyConfiguredException: naming the method, the path and both dialects.
    """
    claimed: dict[tuple[str, str], str] = {}
    for plugin in plugins:
        for claim in sorted(plugin.claims):
            if (other := claimed.setdefault(claim, plugin.name)) != plugin.name:
                msg = f"dialects {other!r} and {plugin.name!r} both serve {claim[0]} {claim[1]}"
                raise ImproperlyConfiguredException(msg)


def migrations(plugins: Iterable[DialectPlugin]) -> Migrations:
    """The migrations a database is held to with ``plugins`` enabled: the core's and each one's own branch.

    Raises:
        ImproperlyConfiguredException: a dialect's migrations folder is missing or breaks the rules of a branch
            (``DialectPlugin.migrations``).
    """
    try:
        return Migrations.of({p.name: p.migrations for p in plugins if p.migrations is not None})
    except MigrationsInvalid as exc:
        raise ImproperlyConfiguredException(str(exc)) from exc


def _opt_in(entry_point: EntryPoint) -> bool:
    """Whether the entry point's dialect is enabled only when named. One that cannot be loaded, or is no dialect,
    counts as not: it is refused when it is enabled (by ``*`` or by name), and only then."""
    try:
        cls = entry_point.load()
    except Exception:  # noqa: BLE001 - an installed dialect that does not even import fails when enabled, with its error
        return False
    return isinstance(cls, type) and issubclass(cls, DialectPlugin) and cls.opt_in


def _dialect_class(name: str, entry_point: EntryPoint) -> type[DialectPlugin]:
    cls = entry_point.load()
    if not (isinstance(cls, type) and issubclass(cls, DialectPlugin)) or cls.name != name:
        msg = f"entry point {name!r} does not load a DialectPlugin named {name!r}"
        raise ImproperlyConfiguredException(msg)
    return cls


def _listing(found: Mapping[str, EntryPoint], *, opt_in_first: bool = False) -> str:
    """The installed dialects, for a message: ``installed: …`` (those ``*`` enables), the opt-in ones named apart."""
    opt_in = [name for name in sorted(found) if _opt_in(found[name])]
    listed = f"installed: {', '.join(name for name in sorted(found) if name not in opt_in) or 'none'}"
    if not opt_in:
        return listed
    named = f"opt-in (enabled only when named): {', '.join(opt_in)}"
    return f"{named}; {listed}" if opt_in_first else f"{listed}; {named}"


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
