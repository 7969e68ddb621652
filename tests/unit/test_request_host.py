"""The host and scheme a dialect reads off a request: as Litestar's URL reads them, but for any Host a client sends."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.connection import Request

from sessiongate.dialects.base import is_secure_request, request_host_name

# What Litestar's router lets through to a route (litestar._asgi.utils.is_valid_host), and a few ports' worth of digits.
HOST_ALPHABET = "0123456789AaBbZz!$&'()*+,;=-._~:[]@%"
hosts = st.one_of(st.none(), st.text(HOST_ALPHABET, max_size=24), st.from_regex(r"\A[a-z.]{0,8}(:[0-9]{0,6})?\Z"))
servers = st.one_of(st.none(), st.tuples(st.sampled_from(["127.0.0.1", "::1", "gateway", ""]), st.integers(0, 70000)))


def request(host: str | None, server: tuple[str, int] | None, scheme: str) -> Request[Any, Any, Any]:
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "state": {},
    }
    if server is not None:
        scope["server"] = server
    return Request(scope)  # type: ignore[arg-type]


@given(host=hosts, server=servers, scheme=st.sampled_from(["http", "https", "ws", "wss"]))
def test_the_host_name_and_the_scheme_are_the_urls_wherever_the_url_can_be_read(host, server, scheme):
    try:
        url = request(host, server, scheme).url
    except (ValueError, KeyError):
        return  # a port the URL refuses: the next test
    assert request_host_name(request(host, server, scheme)) == (url.hostname or "")
    assert is_secure_request(request(host, server, scheme), trust_forwarded=False) == (url.scheme in {"https", "wss"})


@pytest.mark.parametrize(("host", "name"), [("a:xyz", "a"), ("A:99999", "a"), ("a:-1", "a"), ("[::1]:x", "::1")])
def test_a_host_whose_port_the_url_refuses_still_names_its_host(host, name):
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        _ = request(host, ("127.0.0.1", 80), "https").url
    assert request_host_name(request(host, ("127.0.0.1", 80), "https")) == name
    assert is_secure_request(request(host, ("127.0.0.1", 80), "https"), trust_forwarded=False)
