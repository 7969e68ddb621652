"""NData (PORTOS S3) for ``GET /sessions``: ``$skip``, ``$take``, ``$sort``, ``$count`` and member filters.

Every accepted form is described by one regular expression per parameter, built here and repeated verbatim in
``openapi/portos.yaml`` (a test compares them), so the contract and the parser cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal, NamedTuple, get_args

from sessiongate.dialect import InvalidRequest
from sessiongate.dialect import models as core

__all__ = (
    "BOOLEAN",
    "DEFAULT_TAKE",
    "MAX_SKIP",
    "MAX_TAKE",
    "MEMBERS",
    "NData",
    "filter_pattern",
    "parse",
    "sort_pattern",
)

DEFAULT_TAKE = 50
MAX_TAKE = 1000
MAX_SKIP = 2_147_483_647
Kind = Literal["id", "text", "auth", "time", "int"]
BEARER = "Bearer"  # authenticationType of PORTOS's own sessions (S1); other dialects' show their name
# S1 types $count as a bool, and PORTOS is ASP.NET, whose binder reads a bool in any letter case (.NET clients send
# "True"); ASCII letters only, as spelled out: Python's case folding would also take a long s (U+017F) for "s".
BOOLEAN = "[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"


class Member(NamedTuple):
    """A Session member: its wire name (also its filter parameter and sort key) and the core field behind it."""

    name: str
    field: core.SortField
    fallbacks: tuple[core.SortField, ...]
    kind: Kind


MEMBERS = (
    Member("sessionId", "id", (), "id"),
    # The user's login (an amity user's is the userId it registered with), else what the session was opened for.
    Member("identity.userName", "principal_login", ("subject",), "text"),
    Member("identity.deviceName", "device_name", ("device_id", "dialect"), "text"),
    Member("identity.envName", "device_env", ("dialect",), "text"),
    Member("identity.authenticationType", "dialect", (), "auth"),
    Member("startedAt", "created_at", (), "time"),
    Member("expiresAt", "expires_at", (), "time"),
    Member("lastAccessAt", "last_seen_at", (), "time"),
    Member("_v", "version", (), "int"),
)
_BY_KEY = {m.name.lower(): m for m in MEMBERS}
DEFAULT_SORT = (core.SortKey(field="created_at"),)

_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_DAY = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29"
DATE_TIME = (
    f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,7}})?"
    "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_TEXT = "[^;\\u0000]*"  # one argument: the rest of the operation (NUL is refused: PostgreSQL text cannot hold it)
_TEXT_ITEM = "[^:;\\u0000]*"  # an argument of "in", which separates its arguments with ':'
_BARE_TEXT = "[^:;\\u0000]+"  # a value without an operator: without ':', which would make its start an operator
_INT = "-?(?:0|[1-9][0-9]{0,8})"  # fits the 32-bit version column
_OPERATORS: dict[Kind, tuple[tuple[str, ...], str, str | None, str]] = {
    # kind: (single-argument operators, their argument, the argument of "in" or None when "in" is not offered,
    # a bare value: one that means "eq" with it; a time or a number starts with a digit or '-', never an operator)
    "id": (("eq", "neq", "like", "gt", "ge", "lt", "le"), _TEXT, _TEXT_ITEM, _BARE_TEXT),
    "text": (("eq", "neq", "like", "gt", "ge", "lt", "le"), _TEXT, _TEXT_ITEM, _BARE_TEXT),
    "auth": (("eq", "neq"), _TEXT, _TEXT_ITEM, _BARE_TEXT),
    "time": (("eq", "neq", "gt", "ge", "lt", "le"), DATE_TIME, None, DATE_TIME),
    "int": (("eq", "neq", "gt", "ge", "lt", "le"), _INT, _INT, _INT),
}
_OPERATOR_NAMES = frozenset(get_args(core.FilterOp))


def filter_pattern(kind: Kind) -> str:
    """The grammar of one filter parameter's value: operations separated by ``;``, each ``op:arg[:arg…]`` or a
    bare value (which means ``eq``)."""
    single, argument, item, bare = _OPERATORS[kind]
    operation = f"(?:{'|'.join(single)}):{argument}"
    if item is not None:
        operation = f"{operation}|in(?::{item})+"
    operation = f"(?:{operation}|{bare})"
    return f"{operation}(?:;{operation})*"


def sort_pattern() -> str:
    """The grammar of one ``$sort`` value: keys separated by ``,``; ``-key``, ``key``, ``key:asc`` or ``key:desc``."""
    keys = "|".join(re.escape(m.name) for m in MEMBERS)
    item = f"(?i:-(?:{keys})|(?:{keys})(?::(?:asc|desc))?)"
    return f"{item}(?:,{item})*"


_FILTERS = {m.name: re.compile(filter_pattern(m.kind)) for m in MEMBERS}
_SORT = re.compile(sort_pattern())
_NATURAL = re.compile("0|[1-9][0-9]*")
_BOOLEAN = re.compile(BOOLEAN)


class NData(NamedTuple):
    """The raw NData parameters of one request, as Litestar hands them over."""

    skip: str | None
    take: str | None
    sort: list[str] | None
    counting: str | None
    filters: dict[str, list[str] | None]


def parse(raw: NData, *, tenant: str, principal_id: str | None) -> core.SessionQuery:
    """The core query for ``raw``.

    Raises:
        InvalidRequest: naming the parameter in ``field`` (it becomes ``memberName``).
    """
    skip = _natural(raw.skip, "$skip", default=0, limit=MAX_SKIP)
    take = _natural(raw.take, "$take", default=DEFAULT_TAKE, limit=MAX_TAKE)
    if raw.counting is not None and not _BOOLEAN.fullmatch(raw.counting):
        raise InvalidRequest("$count must be true or false", field="$count")
    filters = tuple(f for name, values in raw.filters.items() for value in values or () for f in _filters(name, value))
    return core.SessionQuery(
        tenant=tenant,
        principal_id=principal_id,
        filters=filters,
        sort=_sort(raw.sort or []) or DEFAULT_SORT,
        page=core.PageRequest(skip=skip, take=take),
        count_only=raw.counting is not None and raw.counting.lower() == "true",
    )


def _natural(value: str | None, name: str, *, default: int, limit: int) -> int:
    if value is None:
        return default
    if not _NATURAL.fullmatch(value) or int(value) > limit:
        raise InvalidRequest(f"{name} must be a whole number from 0 to {limit}", field=name)
    return int(value)


def _sort(values: list[str]) -> tuple[core.SortKey, ...]:
    keys: dict[str, core.SortKey] = {}
    for value in values:
        if not _SORT.fullmatch(value):
            raise InvalidRequest(f"$sort: unknown member or direction in {value!r}", field="$sort")
        for item in value.split(","):
            descending = item.startswith("-") or item.lower().endswith(":desc")
            member = _BY_KEY[item.lstrip("-").split(":", 1)[0].lower()]
            # S3: repeating a key is allowed and changes nothing; the first mention decides.
            keys.setdefault(
                member.name, core.SortKey(field=member.field, descending=descending, fallbacks=member.fallbacks)
            )
    return tuple(keys.values())


def _filters(name: str, value: str) -> list[core.SessionFilter]:
    member = next(m for m in MEMBERS if m.name == name)
    if not _FILTERS[name].fullmatch(value):
        raise InvalidRequest(f"{name}: not a valid filter for this member", field=name)
    found = []
    for operation in value.split(";"):
        op, colon, rest = operation.partition(":")
        if not colon or op not in _OPERATOR_NAMES:
            # S1 types sessionId as a plain string "supporting NData syntax": a value without an operator means eq.
            op, rest = "eq", operation
        args = rest.split(":") if op == "in" else [rest]
        found.append(
            core.SessionFilter(
                field=member.field,
                op=op,  # type: ignore[arg-type]  # the pattern admits only FilterOp names
                values=tuple(_value(member.kind, arg) for arg in args),
                fallbacks=member.fallbacks,
            )
        )
    return found


def _value(kind: Kind, arg: str) -> core.FilterValue:
    if kind == "int":
        return int(arg)
    if kind == "time":
        when = datetime.fromisoformat(arg)
        try:
            return when.astimezone(UTC)
        except OverflowError:  # beyond year 1..9999 once in UTC: past every session either way
            return datetime.max.replace(tzinfo=UTC) if when.year > 1 else datetime.min.replace(tzinfo=UTC)
    if kind == "auth" and arg == BEARER:
        return "portos"
    return arg
