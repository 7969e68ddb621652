"""Find dialects through the ``sessiongate.dialects`` entry-point group and enable the configured ones."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.dialects.base import DialectPlugin
from sessiongate.settings import PREFIX

__all__ = ("GROUP", "available", "check_no_route_clash", "check_options", "load")

GROUP = "sessiongate.dialects"


def available() -> dict[str, EntryPoint]:
    """Every installed dialect, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(enabled: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> list[DialectPlugin]:
    """Instantiate the enabled dialects (``*`` = all installed) with their typed options.

    Raises:
        ImproperlyConfiguredException: an unknown dialect name, options given for one (see :func:`check_options`),
            an entry point whose class has another name, options that do not fit the dialect's ``Options``, or a
            class that misses a hook or an attribute.
    """
    installed = available()
    names = sorted(installed) if "*" in enabled else list(dict.fromkeys(enabled))
    if unknown := [n for n in names if n not in installed]:
        msg = f"unknown dialect(s) {', '.join(unknown)}; installed: {', '.join(sorted(installed)) or 'none'}"
        raise ImproperlyConfiguredException(msg)
    check_options(options, installed)
    plugins: list[DialectPlugin] = []
    for name in names:
        cls = _dialect_class(name, installed[name])
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
        installed: The installed dialects, by name (default: :func:`available`).

    Raises:
        ImproperlyConfiguredException: naming what was given and listing what would be read: the installed dialects,
            or the dialect's options.
    """
    if not options:
        return
    installed = available() if installed is None else installed
    if unknown := sorted(set(options) - set(installed)):
        which = "is no installed dialect" if len(unknown) == 1 else "are no installed dialects"
        msg = (
            f"options given for {', '.join(unknown)}, which {which} "
            f"({PREFIX}<DIALECT>__<OPTION> or [dialect_options.<dialect>]); "
            f"installed: {', '.join(sorted(installed)) or 'none'}"
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


def _dialect_class(name: str, entry_point: EntryPoint) -> type[DialectPlugin]:
    cls = entry_point.load()
    if not (isinstance(cls, type) and issubclass(cls, DialectPlugin)) or cls.name != name:
        msg = f"entry point {name!r} does not load a DialectPlugin named {name!r}"
        raise ImproperlyConfiguredException(msg)
    return cls


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
