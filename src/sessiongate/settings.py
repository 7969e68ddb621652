"""Gateway settings, read once from ``SESSIONGATE_*`` variables (and an optional TOML file)."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

import msgspec

__all__ = (
    "DEFAULT_DATABASE_URL",
    "PREFIX",
    "GatewaySettings",
    "Origin",
    "Settings",
    "SettingsError",
    "database_url_for",
    "default_pool",
    "parse_origin",
)

PREFIX = "SESSIONGATE_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sessiongate.db"
MAX_JWT_LEEWAY = 60
MAX_KEY_REFRESH_INTERVAL = 3600
MIN_KEY_BYTES = 32
FILE_SUFFIX = "_FILE"
"""``SESSIONGATE_<NAME>_FILE`` names a file holding the value of ``SESSIONGATE_<NAME>`` (container secrets)."""
MAX_TRUSTED_PROXIES = 32
MAX_PORT = 65535
MIN_METRICS_TOKEN = 16
MAX_POOL = 1000
MAX_PASSWORD_MIN_LENGTH = 1024
POSTGRES_CONNECTIONS = 80
"""Connections all of ``serve``'s workers may hold together by default: PostgreSQL's default ``max_connections`` is
100, and some are kept for the CLI, migrations and the database's own tools."""
MAX_POOL_PER_PROCESS = 30
_POSTGRES_SCHEMES = frozenset(
    {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg", "postgresql+psycopg2", "postgresql+psycopg"}
)
_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"})
_WORKS = "use postgresql://user:password@host:5432/database or sqlite:///relative/path.db (sqlite:////absolute/path.db)"
IGNORED = frozenset({f"{PREFIX}TEST_DATABASE_URL", f"{PREFIX}TEST_REQUIRE_NGINX"})
"""``SESSIONGATE_*`` variables that are not settings but the test suite's: its PostgreSQL server, and CI's demand
that the reverse-proxy tests run rather than skip. CI exports both, so every command the tests start sees them."""
_LISTS = frozenset({"dialects", "trusted_proxy_networks", "allowed_origins"})
"""Settings that also take a comma list from the environment."""
Origin = tuple[str, str, int]
"""A web origin as compared: scheme, host (lower case; an IPv6 address without brackets) and port."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SettingsError(ValueError):
    """The environment or settings file holds a value the gateway cannot use."""


_RULE_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_RULES = 256


class ForwardAuthRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who may reach part of what a proxy guards: every rule matching the original request must hold, else 403.

    A rule matches a request whose path is ``path`` or lies under it (``/admin`` matches ``/admin`` and
    ``/admin/users``, not ``/administration``), whose method is one of ``methods`` and whose host is one of
    ``hosts`` (each: any, when empty). It holds for a session of one of ``dialects``, of one of ``tenants``, holding
    one of ``roles`` (each: any, when empty).
    """

    path: str = "/"
    methods: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or "\x00" in self.path or "%" in self.path:
            msg = f"a forward auth rule's path must start with '/' and hold no '%' nor NUL, got {self.path!r}"
            raise SettingsError(msg)
        if unknown := sorted({m.upper() for m in self.methods} - _RULE_METHODS):
            msg = f"a forward auth rule's methods must be among {', '.join(sorted(_RULE_METHODS))}, got {unknown}"
            raise SettingsError(msg)
        if not (self.roles or self.dialects or self.tenants):
            msg = f"the forward auth rule for {self.path!r} requires nothing: give it roles, dialects or tenants"
            raise SettingsError(msg)


class GatewaySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The gateway's own routes (``SESSIONGATE_GATEWAY__<OPTION>``): forward auth, introspection, revocation."""

    enabled: bool = True
    """Serve them (``false``: only the dialects' routes, ``/healthz``, ``/readyz``, ``/metrics`` and ``/docs``)."""
    prefix: str = "/_sessiongate"
    """The path every one of them lives under, chosen so that it clashes with no vendor's path."""
    audit_retention_days: int = 90
    """Days audit events are kept before the sweeper deletes them (at least 1)."""
    forward_auth_rules: tuple[ForwardAuthRule, ...] = ()
    """Authorization on top of forward auth (a JSON list in ``SESSIONGATE_GATEWAY__FORWARD_AUTH_RULES``, or
    ``[[gateway.forward_auth_rules]]`` tables in the settings file): none by default, every live session passes."""

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix:
            msg = f"gateway prefix must start with '/', not end with one nor hold '//', got {self.prefix!r}"
            raise SettingsError(msg)
        if self.audit_retention_days < 1:
            msg = f"gateway audit_retention_days must be at least 1, got {self.audit_retention_days}"
            raise SettingsError(msg)
        if len(self.forward_auth_rules) > MAX_RULES:
            msg = f"gateway forward_auth_rules: at most {MAX_RULES} rules, got {len(self.forward_auth_rules)}"
            raise SettingsError(msg)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything the gateway can be told. Nothing else reads the environment."""

    database_url: str = DEFAULT_DATABASE_URL
    """``sqlite:///path.db`` (default ``./sessiongate.db``) or ``postgresql://…``, in any usual spelling: kept as the
    URL of the shipped driver (:func:`database_url_for`), ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
    dialects: tuple[str, ...] = ("*",)
    """Dialects to enable: ``*`` for every installed one, or their names."""
    environment: Literal["development", "production"] = "development"
    """``production``: ``serve`` says once, at start, when the keys the gateway generated are kept in clear in the
    database (no ``secret_key``). Nothing else differs: development is never less safe."""
    auto_migrate: bool | None = None
    """Apply migrations at start-up; ``None`` means yes for SQLite and no for other databases."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite only: ``NORMAL`` (a commit survives the process crashing, not a power loss) or ``FULL`` (every commit
    is synced to the disk before it is acknowledged, so it survives a power loss too; an fsync per group commit)."""
    jwt_keys: dict[str, str] = msgspec.field(default_factory=dict)
    """HS256 signing keys by ``kid`` (each at least 32 bytes), added to the key ring kept in the database: generated
    keys there still verify until retired (``sessiongate key-ring retire``). Empty: a generated key signs."""
    jwt_active_kid: str | None = None
    """Which of ``jwt_keys`` signs new tokens; the others still verify. Default: the first."""
    jwt_leeway: int = 5
    """Seconds of clock skew accepted on ``exp``/``iat`` (at most 60)."""
    token_key: str | None = None
    """Key of the keyed SHA-256 digests of opaque tokens. Empty: generated and kept in the database. Given, the
    generated digest keys are still tried on a lookup until retired, and what is found under them is digested again
    under this one."""
    token_key_previous: tuple[str, ...] = ()
    """Earlier values of ``token_key``, while rotating it: secrets digested under them are still found (and digested
    again under ``token_key`` when used) until they are removed from here."""
    key_refresh_interval: float = 30.0
    """Seconds between reads of the key ring kept in the database, so that a rotation reaches every process without a
    restart (0 < interval <= 3600). A new key signs only two intervals after it was made, once every process knows
    it; a token naming a key this process does not know makes it read the ring at once (at most once a second)."""
    secret_key: str | None = None
    """Master key (at least 32 bytes): every key the gateway generates and keeps in the database is stored encrypted
    under it, so a copy of the database holds no usable key. Unset: they are kept in clear (said at start in
    production). A database whose keys are encrypted does not start without it."""
    secret_key_previous: tuple[str, ...] = ()
    """Earlier master keys, while rotating: what is encrypted under them is still read, and encrypted under
    ``secret_key`` again at start or by ``sessiongate secrets rewrap``."""
    secure_cookies: bool = False
    """Always mark cookies ``Secure`` (they are anyway when the request arrived over TLS)."""
    trust_forwarded: bool = False
    """Take the client address and scheme from ``X-Forwarded-For``/``-Proto`` (only behind a trusted proxy)."""
    trusted_proxies: int = 1
    """With ``trust_forwarded``: how many proxies, counted from the gateway, append to ``X-Forwarded-For``; the client
    is the entry that many hops left of the gateway's peer. Ignored when ``trusted_proxy_networks`` is set."""
    trusted_proxy_networks: tuple[str, ...] = ()
    """With ``trust_forwarded``: the proxies' addresses or networks (CIDR). ``X-Forwarded-For`` then counts only when
    the peer is one of them, and the client is the right-most entry that is not."""
    allowed_origins: tuple[str, ...] = ()
    """Origins (``https://dashboard.example``) whose pages may call the routes that authenticate by cookie from
    another site; a browser's request from any other origin is refused (``sessiongate.dialects.origin``)."""
    max_body_bytes: int = 16384
    """Largest request body accepted; larger ones get 413 in the dialect's shape."""
    unavailable_retry_after: int = 5
    """Seconds a 503 tells clients to wait (``Retry-After``) when the database cannot be reached or used."""
    max_url_bytes: int = 8192
    """Longest request target (path and query string) ``serve`` reads; a longer one gets 414."""
    max_header_line_bytes: int = 8192
    """Longest header (name and value) ``serve`` reads; a longer one gets 431."""
    max_header_bytes: int = 32768
    """Most bytes of headers, all together, ``serve`` reads for one request; more get 431."""
    max_header_count: int = 100
    """Most headers ``serve`` reads for one request; more get 431."""
    header_timeout: float = 10.0
    """Seconds a request line and its headers may take to arrive, from their first byte or the connection."""
    body_timeout: float = 10.0
    """Seconds a request body may stop arriving before ``serve`` closes the connection."""
    keep_alive_timeout: float = 5.0
    """Seconds a connection may stay idle between requests before ``serve`` closes it."""
    max_connections: int = 1000
    """Connections one ``serve`` process holds; past it a new one closes the longest-waiting idle or slow one."""
    sweep_interval: float = 60.0
    """Seconds between sweeps of expired sessions; 0 turns the sweeper off."""
    sweep_batch: int = 500
    """Rows deleted per sweep statement."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Threshold of the JSON logs."""
    # -- logs and metrics (sessiongate.observability) --
    access_log: bool = False
    """Log one JSON line per request: method, route template, status, duration, dialect, tenant, client address."""
    metrics_port: int | None = None
    """Serve ``/metrics`` on this port (same host as ``serve --host``) instead of the gateway's own port."""
    metrics_token: str | None = None
    """Bearer token ``/metrics`` asks for (at least 16 characters); unset: none."""
    metrics_interval: float = 15.0
    """Seconds between each process's counts of the live sessions (``sessiongate_live_sessions``)."""
    openapi_dir: Path | None = None
    """Where the hand-written specs are; default: the packaged copy, else the repository's ``openapi/``."""
    admin_login: str | None = None
    """Login of a first admin principal (tenant ``default``, role ``admin``) created at start-up if it does not exist
    yet, for container deployments; needs ``admin_password``. An existing principal of that login is left alone."""
    admin_password: str | None = None
    """Password of that first admin; only its argon2id hash is stored. Unset it once the admin exists."""
    admin_email: str | None = None
    """E-mail address of that first admin."""
    login_max_failures: int = 5
    """Failed logins of one login (of a tenant) before its logins are refused for ``login_lock_seconds``."""
    login_max_address_failures: int = 20
    """Failed logins from one client address before its logins are refused for ``login_lock_seconds``."""
    login_lock_seconds: float = 900.0
    """How long failed logins are counted (from the first) and how long a reached limit refuses logins."""
    password_workers: int | None = None
    """Passwords hashed at once per process (each argon2id hash holds 64 MiB); default one per CPU, at least two."""
    password_queue: int | None = None
    """Logins that may wait for a hashing worker per process; more get 503 with ``Retry-After`` at once instead of
    waiting. Default: twice ``password_workers``."""
    create_rate_limit: int = 600
    """Creates that need no password (zelf, issp, amity registration) one client address may make per
    ``create_rate_window``, per process; more get 429 with ``Retry-After``. 0 turns the budget off."""
    create_rate_window: float = 60.0
    """Seconds over which ``create_rate_limit`` creates refill."""
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    """The gateway's own routes: whether they are served, and under which prefix."""
    dialect_options: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Per-dialect options by dialect name (``SESSIONGATE_<NAME>__<OPTION>``, ``[dialect_options.<name>]``)."""

    # Operating the gateway: its database's connections and what the CLI accepts as a password.
    db_pool_size: int | None = None
    """PostgreSQL only: connections each process keeps open. Default: from ``serve --workers`` (:func:`default_pool`),
    so that all the workers stay under PostgreSQL's default ``max_connections`` of 100."""
    db_max_overflow: int | None = None
    """PostgreSQL only: connections each process may open beyond ``db_pool_size`` under load, each closed as soon as it
    is given back. Default: none (``storage.database.MAX_OVERFLOW`` says why)."""
    password_min_length: int = 12
    """Fewest characters of a password set through the CLI (``users add``, ``users set-password``)."""
    password_check_common: bool = True
    """Refuse a password set through the CLI that is one of the 30 000 most common ones (zxcvbn's list)."""

    def __post_init__(self) -> None:
        self.database_url = database_url_for(self.database_url)
        self._check_keys()
        self._check_limits()
        self._check_proxies()
        self._check_observability()
        self._check_operations()

    def _check_observability(self) -> None:
        if self.metrics_port is not None and not 1 <= self.metrics_port <= MAX_PORT:
            msg = f"metrics_port must be between 1 and {MAX_PORT}"
            raise SettingsError(msg)
        if self.metrics_token is not None and len(self.metrics_token) < MIN_METRICS_TOKEN:
            msg = f"metrics_token must be at least {MIN_METRICS_TOKEN} characters"
            raise SettingsError(msg)
        if self.metrics_interval <= 0:
            msg = "metrics_interval must be greater than 0"
            raise SettingsError(msg)

    def _check_keys(self) -> None:
        if not 0 <= self.jwt_leeway <= MAX_JWT_LEEWAY:
            msg = f"jwt_leeway must be between 0 and {MAX_JWT_LEEWAY} seconds"
            raise SettingsError(msg)
        short = [kid for kid, key in self.jwt_keys.items() if len(key.encode()) < MIN_KEY_BYTES]
        if short:
            msg = f"jwt_keys {short} are shorter than {MIN_KEY_BYTES} bytes"
            raise SettingsError(msg)
        if self.jwt_active_kid is not None and self.jwt_active_kid not in self.jwt_keys:
            msg = f"jwt_active_kid {self.jwt_active_kid!r} is not one of jwt_keys"
            raise SettingsError(msg)
        if not 0 < self.key_refresh_interval <= MAX_KEY_REFRESH_INTERVAL:
            msg = f"key_refresh_interval must be more than 0 and at most {MAX_KEY_REFRESH_INTERVAL} seconds"
            raise SettingsError(msg)
        if self.secret_key_previous and self.secret_key is None:
            msg = "secret_key_previous needs secret_key, the master key to encrypt under"
            raise SettingsError(msg)
        masters = [*([self.secret_key] if self.secret_key is not None else []), *self.secret_key_previous]
        if any(len(key.encode()) < MIN_KEY_BYTES for key in masters):
            msg = f"secret_key and secret_key_previous must each be at least {MIN_KEY_BYTES} bytes"
            raise SettingsError(msg)

    def _check_limits(self) -> None:
        if self.unavailable_retry_after < 1:
            msg = "unavailable_retry_after must be at least 1 second"
            raise SettingsError(msg)
        limits = ("max_url_bytes", "max_header_line_bytes", "max_header_bytes", "max_header_count", "max_connections")
        timeouts = ("header_timeout", "body_timeout", "keep_alive_timeout")
        if not_positive := [name for name in (*limits, *timeouts) if getattr(self, name) <= 0]:
            msg = f"{', '.join(not_positive)} must be greater than 0"
            raise SettingsError(msg)
        if self.password_workers is not None and self.password_workers < 1:
            msg = "password_workers must be at least 1"
            raise SettingsError(msg)
        if self.password_queue is not None and self.password_queue < 0:
            msg = "password_queue must not be negative"
            raise SettingsError(msg)
        if self.create_rate_limit < 0 or self.create_rate_window <= 0:
            msg = "create_rate_limit must not be negative, and create_rate_window must be positive"
            raise SettingsError(msg)

    def _check_operations(self) -> None:
        for name in ("db_pool_size", "db_max_overflow"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_POOL:
                msg = f"{PREFIX}{name.upper()} must be between 0 and {MAX_POOL}"
                raise SettingsError(msg)
        if self.db_pool_size == 0:
            msg = f"{PREFIX}DB_POOL_SIZE must be at least 1"
            raise SettingsError(msg)
        if not 1 <= self.password_min_length <= MAX_PASSWORD_MIN_LENGTH:
            msg = f"{PREFIX}PASSWORD_MIN_LENGTH must be between 1 and {MAX_PASSWORD_MIN_LENGTH}"
            raise SettingsError(msg)

    def _check_proxies(self) -> None:
        if not 1 <= self.trusted_proxies <= MAX_TRUSTED_PROXIES:
            msg = f"trusted_proxies must be between 1 and {MAX_TRUSTED_PROXIES}"
            raise SettingsError(msg)
        for network in self.trusted_proxy_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                msg = f"trusted_proxy_networks: {network!r} is not an address or a network ({exc})"
                raise SettingsError(msg) from exc
        not_origins = [o for o in self.allowed_origins if parse_origin(o) is None]
        if not_origins:
            msg = f"allowed_origins {not_origins} are not origins: scheme://host[:port], http or https"
            raise SettingsError(msg)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite."""
        return self.database_url.startswith("sqlite")

    @property
    def migrate_at_start(self) -> bool:
        """Whether start-up applies migrations."""
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def spec_dir(self) -> Path:
        """The directory of the hand-written OpenAPI specs."""
        if self.openapi_dir is not None:
            return self.openapi_dir
        packaged = Path(__file__).parent / "_openapi"
        return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "openapi"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``SESSIONGATE_*`` variables, over ``SESSIONGATE_CONFIG`` (a TOML file) if set.

        Nested keys split on ``__``: ``SESSIONGATE_ZELF__LIFETIME=300`` sets option ``lifetime`` of dialect
        ``zelf``. Values starting with ``[`` or ``{`` are JSON; list settings also take comma lists. Any setting
        can instead name a file holding its value, ``SESSIONGATE_<NAME>_FILE`` (surrounding whitespace dropped).

        Raises:
            SettingsError: naming the variable that holds a bad value.
        """
        env = os.environ if environ is None else environ
        fields = {f.name for f in msgspec.structs.fields(cls)}
        tree: dict[str, Any] = {}
        if config := env.get(f"{PREFIX}CONFIG", "").strip():
            tree = _read_config_file(config, fields)
        for key, given in env.items():
            # An empty variable is an unset one (``SESSIONGATE_X= command``, an empty line of an env file).
            if not key.startswith(PREFIX) or key == f"{PREFIX}CONFIG" or key in IGNORED or not given.strip():
                continue
            name, raw = key[len(PREFIX) :], given
            if name.endswith(FILE_SUFFIX) and name[: -len(FILE_SUFFIX)].lower() in fields:
                name = name[: -len(FILE_SUFFIX)]
                if env.get(f"{PREFIX}{name}", "").strip():
                    raise SettingsError(f"set {PREFIX}{name} or {key}, not both")
                raw = _read_setting_file(key, given)
            path = name.lower().split("__")
            if len(path) == 1 and path[0] not in fields:
                raise SettingsError(f"{key} is not a setting{_did_you_mean(path[0], fields, PREFIX, upper=True)}")
            value = _parse_value(raw, path[0])
            if path[0] in fields:
                _assign(tree, path, value)
            else:
                _assign(tree.setdefault("dialect_options", {}), path, value)
        try:
            return msgspec.convert(tree, cls, strict=False, dec_hook=_decode_path)
        except (msgspec.ValidationError, SettingsError) as exc:
            text = str(exc)  # what names its variable already says it; msgspec's own errors name the field
            raise SettingsError(text if text.startswith(PREFIX) else f"invalid {PREFIX}* setting: {text}") from exc


def database_url_for(url: str) -> str:
    """The URL the gateway's engine takes for ``url``, in any of its usual spellings (the driver is always the one
    shipped: asyncpg for PostgreSQL, aiosqlite for SQLite).

    Read and written again as SQLAlchemy's ``make_url`` and ``URL.render_as_string`` do (:func:`_read_url`,
    :func:`_render_url`), without importing it: the settings are the lowest layer, and the CLI reads them to parse
    its command line, which needs no database (``--help``).

    Raises:
        SettingsError: ``url`` is no URL, or one of a database the gateway does not support; the message never
            repeats the URL, which may hold a password.
    """
    variable = f"{PREFIX}DATABASE_URL"
    try:
        parsed = _read_url(url.strip())
    except ValueError:
        what = "is not a URL" if "://" not in url else "is not a database URL that can be read"
        raise SettingsError(f"{variable} {what}: {_WORKS}") from None
    scheme = parsed.drivername.lower()
    if scheme in _POSTGRES_SCHEMES:
        query = dict(parsed.query)
        if "sslmode" in query and "ssl" not in query:  # libpq's name; asyncpg's is ssl, with the same values
            query["ssl"] = query.pop("sslmode")
        parsed = msgspec.structs.replace(parsed, drivername="postgresql+asyncpg", query=query)
    elif scheme in _SQLITE_SCHEMES:
        parsed = msgspec.structs.replace(parsed, drivername="sqlite+aiosqlite")
    else:
        raise SettingsError(f"{variable} names a database sessiongate does not support ({scheme!r}): {_WORKS}")
    return _render_url(parsed)


class _Url(msgspec.Struct, frozen=True, kw_only=True):
    """A database URL's parts, as SQLAlchemy's ``URL`` holds them (user and password unquoted)."""

    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, str | tuple[str, ...]]


# SQLAlchemy's own pattern (sqlalchemy.engine.url._parse_url), so that every URL it reads is read alike here: a
# password may hold any character but '@' unquoted, an IPv6 host is bracketed, the query string is the rest.
_URL = re.compile(
    r"""
    (?P<name>[\w\+]+)://
    (?:
        (?P<username>[^:/]*)
        (?::(?P<password>[^@]*))?
    @)?
    (?:
        (?:
            \[(?P<ipv6host>[^/\?]+)\] |
            (?P<ipv4host>[^/:\?]+)
        )?
        (?::(?P<port>[^/\?]*))?
    )?
    (?:/(?P<database>[^\?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.VERBOSE,
)


def _read_url(text: str) -> _Url:
    """``text``'s parts, as ``sqlalchemy.engine.make_url`` reads them.

    Raises:
        ValueError: not a URL of that shape, or its port is not a number.
    """
    found = _URL.match(text)
    if found is None:
        msg = "not a database URL"
        raise ValueError(msg)
    parts = found.groupdict()
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parse_qsl(parts["query"] or ""):  # blank values are dropped, as SQLAlchemy drops them
        held = query.get(key)
        query[key] = value if held is None else (*_each(held), value)
    port = parts["port"]
    return _Url(
        drivername=parts["name"],
        username=None if parts["username"] is None else unquote(parts["username"]),
        password=None if parts["password"] is None else unquote(parts["password"]),
        host=parts["ipv4host"] or parts["ipv6host"],
        port=None if port is None else int(port),  # an empty port is refused too, as SQLAlchemy refuses it
        database=parts["database"],
        query=query,
    )


def _render_url(url: _Url) -> str:
    """``url`` written out as ``URL.render_as_string(hide_password=False)`` writes it: what the engine is given."""
    text = f"{url.drivername}://"
    if url.username is not None:
        text += quote(url.username, safe=" +")
        if url.password is not None:
            text += ":" + quote(url.password, safe=" +")
        text += "@"
    if url.host is not None:
        text += f"[{url.host}]" if ":" in url.host else url.host
    if url.port is not None:
        text += f":{url.port}"
    if url.database is not None:
        text += f"/{url.database}"
    if url.query:
        text += "?" + "&".join(
            f"{quote_plus(key)}={quote_plus(value)}" for key in sorted(url.query) for value in _each(url.query[key])
        )
    return text


def _each(values: str | tuple[str, ...]) -> tuple[str, ...]:
    """The values of a query parameter given once (a ``str``) or more (a ``tuple``)."""
    return (values,) if isinstance(values, str) else values


def default_pool(workers: int) -> tuple[int, int]:
    """The PostgreSQL pool of each of ``workers`` processes: its size and overflow, together at most
    :data:`MAX_POOL_PER_PROCESS` and, over all the workers, at most :data:`POSTGRES_CONNECTIONS` (but never fewer than
    two a process: past 40 workers, give PostgreSQL more connections or set the pool). All of it is pool, none
    overflow: an overflow connection is opened for one request and closed after it (``database.MAX_OVERFLOW``)."""
    per_process = max(2, min(MAX_POOL_PER_PROCESS, POSTGRES_CONNECTIONS // max(1, workers)))
    return per_process, 0


def _read_config_file(path: str, fields: set[str]) -> dict[str, Any]:
    variable = f"{PREFIX}CONFIG"
    try:
        tree = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{variable}: {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{variable}: {path} is not valid TOML: {exc}") from None
    for key, value in tree.items():
        if key in fields:
            continue
        if isinstance(value, dict):
            msg = (
                f"{variable}: {path}: [{key}] is not a setting; options of a dialect go in [dialect_options.{key}] "
                f"(settings are top-level keys, such as database_url)"
            )
        else:
            msg = f"{variable}: {path}: {key!r} is not a setting{_did_you_mean(key, fields)}"
        raise SettingsError(msg)
    return tree


def _did_you_mean(name: str, choices: set[str], prefix: str = "", *, upper: bool = False) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    if not close:
        return ""
    return f" (did you mean {prefix}{close[0].upper() if upper else close[0]}?)"


def _read_setting_file(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The reason only: never the content, which may be a secret.
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError(f"{variable}: cannot read {path}: {reason}") from None


def _decode_path(kind: type, value: Any) -> Any:
    # msgspec has no native Path; environment variables and TOML both give text.
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {kind!r}")


def _parse_value(raw: str, name: str) -> Any:
    text = raw.strip()
    if name == "secret_key":  # a key is what it is, whatever it starts with
        return text
    if name in {"secret_key_previous", "token_key_previous"} and text[:1] != "[":
        return [line.strip() for line in text.splitlines() if line.strip()]  # one key, or one per line (a file)
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{PREFIX}{name.upper()} is not valid JSON: {exc}") from exc
    if name in _LISTS:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def parse_origin(text: str) -> Origin | None:
    """A web origin (RFC 6454) ``scheme://host[:port]`` as compared, or ``None`` for ``null`` and anything else."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        return None
    return parts.scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS[parts.scheme]


def _assign(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value
