"""Forward auth's rules: which live sessions may reach which part of what a proxy guards.

The proxy names the request it guards in headers it sets itself (Traefik, Caddy: ``X-Forwarded-Uri``,
``-Method``, ``-Host``; the README's nginx: ``X-Original-URI``, ``X-Original-Method``). Every rule that matches the
request must hold for the session, else the answer is 403.

Matching errs towards applying a rule, never towards skipping one: the path is percent-decoded until it no longer
changes, its dot segments resolved and its repeated slashes merged, and compared without regard to case, so that no
spelling an upstream reads as ``/admin`` escapes a rule for ``/admin``. A request whose path cannot be known (no
header, or one that is no path) has every rule applied, as has one whose host is not named (``X-Forwarded-Host``)
every rule naming hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import unquote, urlsplit

from sessiongate.core.models import Session
from sessiongate.settings import ForwardAuthRule

__all__ = ("OriginalRequest", "normalized_path", "original_request", "refuses")

_DECODE_ROUNDS = 4


class Headers(Protocol):
    """A request's headers, each name with every value it was sent with (Litestar's ``Headers``)."""

    def getall(self, key: str, default: list[str]) -> list[str]: ...


class OriginalRequest:
    """The request a proxy asks about, as every header that may name it does.

    A client can add a header its proxy does not set (nginx passes the client's own ``X-Forwarded-Uri`` on; Traefik
    the client's ``X-Original-URI``), never remove the one the proxy sets. So every path, method and host named is
    taken, and a rule applies when it matches any of them: a header a client adds can only make more rules apply.
    ``None`` stands for a path or host named in a way that cannot be read (every rule then applies).
    """

    __slots__ = ("hosts", "methods", "paths")

    def __init__(self, paths: list[str | None], methods: set[str], hosts: list[str | None]) -> None:
        self.paths = paths
        self.methods = methods
        self.hosts = hosts


def original_request(headers: Headers, method: str) -> OriginalRequest:
    """The guarded request as the proxy's headers (and the client's) name it; ``method`` is the one the proxy asked
    with, which Traefik and Caddy set to the original's."""
    uris = _all(headers, "x-forwarded-uri") + _all(headers, "x-original-uri")
    methods = {m.strip().upper() for m in _all(headers, "x-forwarded-method") + _all(headers, "x-original-method")}
    # Not Host: on a proxy's subrequest it names the gateway (nginx), not the guarded site.
    hosts = _all(headers, "x-forwarded-host")
    return OriginalRequest(
        [normalized_path(uri) for uri in uris] or [None],
        methods | {method.upper()},
        [_host_name(host) if host.strip() else None for host in hosts] or [None],
    )


def _all(headers: Headers, name: str) -> list[str]:
    return (
        [v for value in headers.getall(name, []) for v in value.split(",")]
        if name != "host"
        else (headers.getall(name, []))
    )


def normalized_path(uri: str) -> str | None:
    """The path of ``uri`` as an upstream would resolve it, lower case; ``None`` when it is no path."""
    if "\x00" in uri or len(uri) > 16384:
        return None
    try:
        path = urlsplit(uri.strip()).path if "://" in uri else uri.split("?", 1)[0].split("#", 1)[0]
    except ValueError:
        return None
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return None  # still encoded after every round: no upstream reads it, and no rule is skipped for it
    if "\x00" in path or not path.startswith("/"):
        return None
    return _remove_dot_segments(path.replace("\\", "/")).lower()


def refuses(rules: Sequence[ForwardAuthRule], request: OriginalRequest, session: Session, roles: Sequence[str]) -> bool:
    """Whether a rule matching ``request`` does not hold for ``session`` (whose roles are ``roles``)."""
    return any(_matches(rule, request) and not _holds(rule, session, roles) for rule in rules)


def _matches(rule: ForwardAuthRule, request: OriginalRequest) -> bool:
    if rule.methods and not request.methods & {m.upper() for m in rule.methods}:
        return False
    if rule.hosts:
        named = {_host_name(h) for h in rule.hosts}
        if not any(host is None or host in named for host in request.hosts):
            return False
    prefix = rule.path.lower().rstrip("/")
    return any(path is None or not prefix or path == prefix or path.startswith(f"{prefix}/") for path in request.paths)


def _holds(rule: ForwardAuthRule, session: Session, roles: Sequence[str]) -> bool:
    return (
        (not rule.dialects or session.dialect in rule.dialects)
        and (not rule.tenants or session.tenant in rule.tenants)
        and (not rule.roles or any(role in rule.roles for role in roles))
    )


def _host_name(host: str) -> str:
    name = host.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        return name.split("]", 1)[0] + "]"
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4, with repeated slashes merged as most servers do.
    out: list[str] = []
    for written in path.split("/")[1:]:
        segment = written.split(";", 1)[0]  # a path parameter (/admin;jsessionid=…), which servlet containers drop
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    trailing = "/" if path.endswith(("/", "/.", "/..")) and out else ""
    return "/" + "/".join(out) + trailing
