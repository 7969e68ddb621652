"""``DialectContext``: the one object a dialect's handlers are given.

A handler asks for ``ctx: NamedDependency[...]`` and finds there the dialect (its options, its expiry policy), the
services its handlers call (sessions, identity, the settings, the door to the dialect's own tables) and whatever the
dialect adds in a subclass of its own (portos's devices, amity's tenants). It is made once per enabled dialect, when
the app's services open, and handed out as it is: one dependency of a request resolved without awaiting anything.

It replaces a chain of five app-level dependencies (settings, services, sessions, identity, dialect) that each took
the one before it only so that Litestar would not resolve them side by side: Litestar resolves the dependencies of
one level concurrently, in an anyio task group per request (litestar#4563), which for these lookups, with nothing to
overlap, cost a fifth of a validate's throughput. One object has no sibling to run beside; a dialect's own
dependencies (a ``caller`` read from the request) take ``ctx`` and so come after it.
``tests/unit/test_dependency_chain.py`` holds every route to that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from sessiongate.dialects.options import OptionsT_co
from sessiongate.dialects.storage import DialectStorage

if TYPE_CHECKING:
    from sessiongate.core.models import ExpiryPolicy
    from sessiongate.dialects.base import DialectPlugin
    from sessiongate.identity.service import IdentityService
    from sessiongate.runtime import Services
    from sessiongate.sessions.service import SessionService
    from sessiongate.settings import Settings

__all__ = ("DialectContext",)


class DialectContext(Generic[OptionsT_co]):
    """What a handler of one dialect works with. Subclass it (and name the subclass in the dialect's ``Context``) to
    add what the dialect's handlers share beyond it; its ``__init__`` takes the same two arguments.

    Attributes:
        dialect: The dialect whose routes are served.
        options: Its options, typed as the dialect's own.
        policy: Its expiry policy, asked for once (``DialectPlugin.expiry_policy``).
        services: Everything the process built (the runner, the key ring, the clock), for what the attributes
            below do not cover.
        sessions: The session service: create, resolve, refresh, revoke, list.
        identity: Principals, passwords, logins and their throttle.
        storage: Reads and writes of the dialect's own tables, through the statement runner (rows that belong to
            a session are written with it: ``sessions.create(..., also_write=...)``).
        settings: The gateway's settings.
    """

    __slots__ = (
        "dialect",
        "identity",
        "options",
        "policy",
        "services",
        "sessions",
        "settings",
        "storage",
    )

    if not TYPE_CHECKING:
        # At run time ``DialectContext[SomeOptions]`` is the class itself; type checkers still see the parameter.
        # Litestar checks a handler's ``ctx`` with isinstance on every request, which a subscripted generic answers
        # with a TypeError that Litestar then catches: about a fortieth of an issp validate's instructions.
        def __class_getitem__(cls, options: object) -> type:
            del options
            return cls

    def __init__(self, dialect: DialectPlugin[OptionsT_co], services: Services) -> None:
        self.dialect = dialect
        self.options: OptionsT_co = dialect.options
        self.policy: ExpiryPolicy = dialect.expiry_policy()
        self.services = services
        self.sessions: SessionService = services.sessions
        self.identity: IdentityService = services.identity
        self.storage = DialectStorage(services.runner)
        self.settings: Settings = services.settings
