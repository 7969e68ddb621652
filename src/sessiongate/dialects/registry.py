"""Find dialects through the ``sessiongate.dialects`` entry-point group and enable the configured ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.dialects.base import DialectPlugin

__all__ = ("GROUP", "available", "check_no_route_clash", "load")

GROUP = "sessiongate.dialects"


def available() -> dict[str, EntryPoint]:
    """Every installed dialect, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(enabled: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> list[DialectPlugin]:
    """Instantiate the enabled dialects (``*`` = all installed) with their typed options.

    Raises:
        ImproperlyConfiguredException: an unknown dialect name, an entry point whose class has another name,
            options that do not fit the dialect's ``Options``, or a class that misses a hook or an attribute.
    """
    installed = available()
    names = sorted(installed) if "*" in enabled else list(dict.fromkeys(enabled))
    if unknown := [n for n in names if n not in installed]:
        msg = f"unknown dialect(s) {', '.join(unknown)}; installed: {', '.join(sorted(installed)) or 'none'}"
        raise ImproperlyConfiguredException(msg)
    plugins: list[DialectPlugin] = []
    for name in names:
        cls = installed[name].load()
        if not (isinstance(cls, type) and issubclass(cls, DialectPlugin)) or cls.name != name:
            msg = f"entry point {name!r} does not load a DialectPlugin named {name!r}"
            raise ImproperlyConfiguredException(msg)
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
