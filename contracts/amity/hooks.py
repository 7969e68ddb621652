"""Schemathesis CLI hooks for amity: ``SCHEMATHESIS_HOOKS=contracts/amity/hooks.py`` with the ``AMITY_*`` variables
that ``auth.py`` reads, when running ``openapi/amity.yaml`` (only that spec: the provider is global)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import schemathesis

_spec = importlib.util.spec_from_file_location("sessiongate_contract_amity_auth", Path(__file__).with_name("auth.py"))
assert _spec is not None
assert _spec.loader is not None
_auth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_auth)

schemathesis.auth(refresh_interval=None)(_auth.AmityAuth)
