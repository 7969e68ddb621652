"""The dialect SDK: what a dialect plugin may use, in one place (``from sessiongate.dialect import ...``).

Every dialect, the five shipped in ``plugins/`` included, imports sessiongate only through this module
(``tests/contract/test_layers.py`` holds them to it), so what a third party builds on is exactly what is listed
here, typed (the package ships ``py.typed``). A name leaves this list only with a note in the changelog.

- the plugin: :class:`DialectPlugin` (subclass it: ``name``, ``title``, controllers, options, ``render_error``; and,
  for a dialect that owns tables, ``migrations``, the folder of its own Alembic branch) and :class:`DialectOptions`
  (subclass it for a dialect's own options);
- the shared model layer and its errors: ``models`` and ``errors`` (the modules), and their common names;
- request helpers: strict JSON bodies (:func:`json_body`), bearer tokens, the client's address, the create budget,
  cookies, the cross-site refusal;
- what a handler is given: :class:`DialectContext` (``ctx``: the dialect, its options and expiry policy, and the
  services — :class:`SessionService` for sessions and their refresh tokens, :class:`IdentityService`, the
  settings; subclass it for what a dialect's handlers share); and, until they move into their dialects
  (issue 14), the devices and tenants two dialects keep;
- a dialect's own tables: :class:`DialectStorage` (``ctx.storage``: reads and writes through the statement runner)
  and :data:`DialectWrites` (the rows a session's create or revoke writes in its transaction: ``also_write=``).
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
from sessiongate.dialects.base import DialectOptions, DialectPlugin, bearer_token, within_create_budget
from sessiongate.dialects.bodies import humanize, json_body
from sessiongate.dialects.context import DialectContext
from sessiongate.dialects.cookies import (
    EPOCH,
    SameSite,
    cookie_is_secure,
    encode_cookie_value,
    expired_cookie,
    set_cookie,
)
from sessiongate.dialects.origin import refuse_cross_site
from sessiongate.dialects.storage import DialectStorage
from sessiongate.identity.devices import Devices, RegisteredDevice, exclusive_key
from sessiongate.identity.service import IdentityService
from sessiongate.identity.tenants import NETWORK_REALM, Tenant, TenantService
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog
from sessiongate.sessions.service import Refreshed, SessionService
from sessiongate.settings import Settings
from sessiongate.tokens.opaque import new_secret

__all__ = (
    "EPOCH",
    "NETWORK_REALM",
    "AccountDisabled",
    "AuditLog",
    "Conflict",
    "Devices",
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
    "NotFound",
    "RefreshRaced",
    "Refreshed",
    "RegisteredDevice",
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
    "bearer_token",
    "client_address",
    "cookie_is_secure",
    "encode_cookie_value",
    "errors",
    "exclusive_key",
    "expired_cookie",
    "humanize",
    "json_body",
    "models",
    "new_secret",
    "refuse_cross_site",
    "set_cookie",
    "within_create_budget",
)
