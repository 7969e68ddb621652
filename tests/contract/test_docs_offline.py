from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from sessiongate.docs import DocEntry, docs_router

SPEC = b"""openapi: 3.1.0
info:
  title: Tiny   # a comment that must survive
  version: "1.0"
paths: {}
"""

URL_ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)

EXPECTED_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
}


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_bytes(SPEC)
    return path


@pytest.fixture
def client(spec_path: Path) -> Iterator[TestClient[Litestar]]:
    entries = [
        DocEntry(name="tiny", title="Tiny <sessions> & co", spec_path=spec_path),
        DocEntry(name="other", title="Other sessions", spec_path=spec_path),
    ]
    with TestClient(app=Litestar(route_handlers=[docs_router(entries)])) as test_client:
        yield test_client


def test_index_lists_every_entry_with_its_page_and_spec(client: TestClient[Litestar]) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for name in ("tiny", "other"):
        assert f'href="/docs/{name}"' in response.text
        assert f'href="/docs/{name}/openapi.yaml"' in response.text
    assert "Tiny &lt;sessions&gt; &amp; co" in response.text
    assert "Other sessions" in response.text


def test_index_says_so_when_there_are_no_entries() -> None:
    with TestClient(app=Litestar(route_handlers=[docs_router([])])) as client:
        response = client.get("/docs")
    assert response.status_code == 200
    assert "No API specs" in response.text


def test_dialect_page_loads_only_local_assets(client: TestClient[Litestar]) -> None:
    response = client.get("/docs/tiny")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Tiny &lt;sessions&gt; &amp; co" in page
    assert "validatorUrl: null" in page
    assert '"/docs/tiny/openapi.yaml"' in page
    urls = URL_ATTR.findall(page)
    assert urls
    for url in urls:
        assert not url.lower().startswith(("http:", "https:", "//")), url
    assert not re.search(r"""(?i)https?:|["'(]//""", page)


def test_every_asset_the_dialect_page_references_is_served(client: TestClient[Litestar]) -> None:
    urls = URL_ATTR.findall(client.get("/docs/tiny").text)
    assets = [url for url in urls if url.startswith("/docs/static/")]
    suffixes = {Path(url).suffix for url in assets}
    assert suffixes == {".js", ".css", ".svg"}
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content, url
        content_type = response.headers["content-type"].split(";")[0].strip()
        assert content_type in EXPECTED_TYPES[Path(url).suffix], (url, content_type)


def test_raw_spec_is_returned_byte_for_byte(client: TestClient[Litestar]) -> None:
    response = client.get("/docs/tiny/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.content == SPEC


def test_unknown_dialect_is_not_found(client: TestClient[Litestar]) -> None:
    assert client.get("/docs/nope").status_code == 404
    assert client.get("/docs/nope/openapi.yaml").status_code == 404


def test_invalid_or_duplicate_entry_names_are_rejected(spec_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid"):
        docs_router([DocEntry(name="static", title="Clash", spec_path=spec_path)])
    with pytest.raises(ValueError, match="invalid"):
        docs_router([DocEntry(name="Bad Name", title="Bad", spec_path=spec_path)])
    with pytest.raises(ValueError, match="duplicate"):
        docs_router([DocEntry(name="a", title="A", spec_path=spec_path)] * 2)
