from __future__ import annotations

from typing import ClassVar

import pytest
from litestar import get
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.dialects import registry
from sessiongate.dialects.base import DialectOptions, DialectPlugin
from sessiongate_zelf import ZelfDialect


def test_every_installed_dialect_is_enabled_by_default():
    assert [p.name for p in registry.load(("*",), {})] == sorted(registry.available())


def test_unknown_dialect_fails_listing_the_installed_ones():
    with pytest.raises(ImproperlyConfiguredException, match=r"unknown dialect\(s\) nope; installed: .*zelf"):
        registry.load(("zelf", "nope"), {})


def test_dialect_options_are_typed():
    (zelf,) = registry.load(("zelf",), {"zelf": {"lifetime": "120", "prefix": "/z"}})
    assert zelf.options.lifetime == 120  # type: ignore[attr-defined]
    assert zelf.options.prefix == "/z"


def test_bad_dialect_options_fail_at_start_up():
    with pytest.raises(ImproperlyConfiguredException, match="invalid options for dialect 'zelf'"):
        registry.load(("zelf",), {"zelf": {"lifetime": "soon"}})
    with pytest.raises(ImproperlyConfiguredException, match="invalid options for dialect 'zelf'"):
        registry.load(("zelf",), {"zelf": {"no_such_option": 1}})


def test_a_prefix_moves_the_dialect_routes():
    plugin = ZelfDialect(ZelfDialect.Options(prefix="/zelf"))
    assert ("POST", "/zelf/api/sessions") in plugin.claims


@get("/api/sessions", sync_to_thread=False)
def _clashing() -> None:
    return None


class _Clash(DialectPlugin):
    name = "clash"
    title = "Clash"
    controllers: ClassVar = [_clashing]


def test_two_dialects_on_the_same_method_and_path_are_refused():
    plugins = [ZelfDialect(), _Clash(DialectOptions())]
    registry.check_no_route_clash(plugins)  # GET vs POST: no clash
    zelf_get = type("ZelfGet", (_Clash,), {"name": "zelfget"})(DialectOptions())
    with pytest.raises(ImproperlyConfiguredException, match="both serve GET /api/sessions"):
        registry.check_no_route_clash([zelf_get, _Clash(DialectOptions())])
