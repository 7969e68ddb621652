"""The dialect SDK: what a dialect plugin may use, in one place (``from sessiongate.dialect import ...``).

Every dialect, the five shipped in ``plugins/`` included, imports sessiongate only through this module
(``tests/contract/test_layers.py`` holds them to it), so what a third party builds on is exactly what is listed
here, typed (the package ships ``py.typed``). A name leaves this list only with a note in CHANGELOG.md.

- the plugin: :class:`DialectPlugin` (subclass it: ``name``, ``title``, controllers, options, ``render_error``; for a
  dialect that owns tables, ``migrations``, the folder of its own Alembic branch; for one that administers something
  of its own, ``admin_controllers``, routes the gateway mounts in its admin API, and ``commands``, groups of the
  command line) and :class:`DialectOptions` (subclass it for a dialect's own options);
- the shared model layer and its errors: ``models`` and ``errors`` (the modules), and their common names;
- answers: :class:`Response`, Litestar's own, which a dialect's handlers return (it sends a plain answer by a short
  path: ``sessiongate.dialects.responses``);
- request helpers: strict JSON bodies (:func:`json_body`), bearer tokens, the client's address, the create budget,
  cookies (a request's: :func:`request_cookie`), the host a request was sent to (:func:`request_host_name`), the
  cross-site refusal;
- what a handler is given: :class:`DialectContext` (``ctx``: the dialect, its options and expiry policy, and the
  services — :class:`SessionService` for sessions and their refresh tokens, :class:`IdentityService`, the
  settings; subclass it for what a dialect's handlers share); and the tenants (:class:`TenantService`), which are the
  gateway's, not a dialect's: principals of every dialect belong to them;
- a dialect's own tables: :class:`DialectStorage` (``ctx.storage``: reads and writes through the statement runner),
  :data:`DialectWrites` (the rows a session's create, takeover or revoke writes in its transaction: ``also_write=``),
  ``columns``, the column types of the core's own tables (ids, instants and JSON stored as the core stores them), and
  :func:`is_unique_violation` (a refused write that is a taken key, told from any other refusal);
- the audit log: :class:`AuditLog` and :class:`NewEvent` (a dialect records its own changes' events);
- a dialect's admin routes and commands: ``admin`` (the caller's audit origin, the admin API's checks, its page
  cursors and answers), :func:`run_command` and :func:`by_command` (a command's work with the dialect's context, and
  its audit origin).
"""

from __future__ import annotations

from sessiongate.addresses import client_address
from sessiongate.core import errors, models
from sessiongate.core.errors import (
    AccountDisabled,
    Conflict,
    Forbidden,
    GatewayError,
    InvalidRequest,
    NotFound,
    RefreshRaced,
    SessionExpired,
    SessionLimitReached,
    SessionRevoked,
    Unauthenticated,
    Unavailable,
)
from sessiongate.core.models import ExpiryPolicy, Session
from sessiongate.core.store import DialectWrites
from sessiongate.dialects import admin
from sessiongate.dialects.base import (
    DialectOptions,
    DialectPlugin,
    bearer_token,
    request_host_name,
    within_create_budget,
)
from sessiongate.dialects.bodies import humanize, json_body
from sessiongate.dialects.commands import by_command, run_command
from sessiongate.dialects.context import DialectContext
from sessiongate.dialects.cookies import (
    EPOCH,
    SameSite,
    cookie_is_secure,
    encode_cookie_value,
    expired_cookie,
    request_cookie,
    set_cookie,
)
from sessiongate.dialects.origin import refuse_cross_site
from sessiongate.dialects.responses import Response
from sessiongate.dialects.storage import DialectStorage
from sessiongate.identity.service import IdentityService
from sessiongate.identity.tenants import NETWORK_REALM, Tenant, TenantService
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, NewEvent
from sessiongate.sessions.service import Refreshed, SessionService
from sessiongate.settings import Settings
from sessiongate.storage import columns
from sessiongate.storage.integrity import is_unique_violation
from sessiongate.tokens.opaque import new_secret

__all__ = (
    "EPOCH",
    "NETWORK_REALM",
    "AccountDisabled",
    "AuditLog",
    "Conflict",
    "DialectContext",
    "DialectOptions",
    "DialectPlugin",
    "DialectStorage",
    "DialectWrites",
    "ExpiryPolicy",
    "Forbidden",
    "GatewayError",
    "IdentityService",
    "InvalidRequest",
    "NewEvent",
    "NotFound",
    "RefreshRaced",
    "Refreshed",
    "Response",
    "SameSite",
    "Services",
    "Session",
    "SessionExpired",
    "SessionLimitReached",
    "SessionRevoked",
    "SessionService",
    "Settings",
    "Tenant",
    "TenantService",
    "Unauthenticated",
    "Unavailable",
    "admin",
    "bearer_token",
    "by_command",
    "client_address",
    "columns",
    "cookie_is_secure",
    "encode_cookie_value",
    "errors",
    "expired_cookie",
    "humanize",
    "is_unique_violation",
    "json_body",
    "models",
    "new_secret",
    "refuse_cross_site",
    "request_cookie",
    "request_host_name",
    "run_command",
    "set_cookie",
    "within_create_budget",
)
