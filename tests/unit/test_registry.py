from __future__ import annotations

from typing import Any, ClassVar

import pytest
from litestar import Request, Response, get
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.core.errors import GatewayError
from sessiongate.core.models import ExpiryPolicy
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


def test_options_for_a_dialect_that_is_not_installed_are_refused_listing_the_installed_ones():
    installed = ", ".join(sorted(registry.available()))
    for enabled in (("zelf",), ("*",)):
        with pytest.raises(ImproperlyConfiguredException) as refused:
            registry.load(enabled, {"zelff": {"prefix": "/z"}})
        assert "options given for zelff, which is no installed dialect" in refused.value.detail
        assert refused.value.detail.endswith(f"installed: {installed}")
    with pytest.raises(ImproperlyConfiguredException, match="zelff, zlef, which are no installed dialects"):
        registry.check_options({"zlef": {}, "zelff": {}})


def test_options_of_an_installed_dialect_that_is_not_enabled_are_allowed():
    (issp,) = registry.load(("issp",), {"zelf": {"prefix": "/z", "lifetime": "120"}})
    assert issp.name == "issp"
    registry.check_options({"zelf": {"prefix": "/z"}})


def test_an_option_a_dialect_does_not_have_is_refused_naming_it_and_the_dialect_enabled_or_not():
    for enabled in (("zelf",), ("issp",)):
        with pytest.raises(ImproperlyConfiguredException) as refused:
            registry.load(enabled, {"zelf": {"prefx": "/z", "lifetime": "120"}})
        detail = refused.value.detail
        assert detail.startswith("invalid options for dialect 'zelf': no option named prefx (did you mean prefix?) ")
        assert "SESSIONGATE_ZELF__<OPTION> or [dialect_options.zelf]" in detail
        assert detail.endswith("its options: lifetime, max_sessions_per_principal, on_session_cap, prefix, tenant")
    with pytest.raises(ImproperlyConfiguredException) as refused:
        registry.check_options({"zelf": {"qqq": "1", "lifetme": "1"}})
    assert "no option named lifetme (did you mean lifetime?), qqq (" in refused.value.detail


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

    def expiry_policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(ttl=60)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        return Response({"error": error.message}, status_code=error.status)


class _NoErrors(DialectPlugin):
    """A dialect that forgot its error shape."""

    name = "noerrors"
    title = "No errors"
    controllers: ClassVar = [_clashing]

    def expiry_policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(ttl=60)


class _Untitled(DialectPlugin):
    """A dialect that forgot its spec's title."""

    name = "untitled"
    controllers: ClassVar = [_clashing]
    expiry_policy = _Clash.expiry_policy
    render_error = _Clash.render_error


class _EntryPoint:
    def __init__(self, cls: type) -> None:
        self.cls = cls

    def load(self) -> type:
        return self.cls


def test_a_dialect_missing_a_hook_or_an_attribute_is_refused_when_the_app_starts(monkeypatch):
    with pytest.raises(TypeError, match="render_error"):
        _NoErrors()
    with pytest.raises(TypeError, match="_Untitled does not set title"):
        _Untitled()
    monkeypatch.setattr(registry, "available", lambda: {"noerrors": _EntryPoint(_NoErrors)})
    with pytest.raises(ImproperlyConfiguredException, match=r"dialect 'noerrors' cannot start: .*render_error"):
        registry.load(["noerrors"], {})


def test_two_dialects_on_the_same_method_and_path_are_refused():
    plugins = [ZelfDialect(), _Clash(DialectOptions())]
    registry.check_no_route_clash(plugins)  # GET vs POST: no clash
    zelf_get = type("ZelfGet", (_Clash,), {"name": "zelfget"})(DialectOptions())
    with pytest.raises(ImproperlyConfiguredException, match="both serve GET /api/sessions"):
        registry.check_no_route_clash([zelf_get, _Clash(DialectOptions())])


class _Opts(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    colour: str = "blue"


class _Typed(DialectPlugin[_Opts]):
    """A dialect that names its options only as its type argument."""

    name = "typed"
    title = "Typed"
    controllers: ClassVar = [_clashing]

    def expiry_policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(ttl=60 if self.options.colour == "blue" else 30)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        return Response({"error": error.message}, status_code=error.status)


def test_a_dialects_type_argument_is_the_struct_its_options_are_read_into(monkeypatch):
    assert _Typed.Options is _Opts
    assert _Typed().options == _Opts()
    monkeypatch.setattr(registry, "available", lambda: {"typed": _EntryPoint(_Typed)})
    (typed,) = registry.load(["typed"], {"typed": {"colour": "red", "prefix": "/t"}})
    assert typed.options == _Opts(colour="red", prefix="/t")
    assert typed.expiry_policy().ttl == 30
    with pytest.raises(ImproperlyConfiguredException, match="no option named color"):
        registry.load(["typed"], {"typed": {"color": "red"}})
