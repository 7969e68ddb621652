"""Principals, their passwords and auth tokens, and throttled logins, shared by every dialect."""

from __future__ import annotations

from sessiongate.identity.service import INVALID_CREDENTIALS, IdentityService
from sessiongate.identity.throttle import ThrottlePolicy

__all__ = ("INVALID_CREDENTIALS", "IdentityService", "ThrottlePolicy")
