"""Offline API docs: Swagger UI pages for the hand-written OpenAPI specs.

Every asset is vendored under ``static/docs``, so the pages need no network. A spec is served as written (YAML, and
as JSON); for a dialect mounted under a prefix (``SESSIONGATE_<NAME>__PREFIX``) its ``servers`` say that prefix, so
that every path of the document, read against its server, is the path the gateway serves.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml
from litestar import MediaType, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

__all__ = ["DocEntry", "docs_router"]

_STATIC_DIR = Path(__file__).parent / "static" / "docs"
_ASSETS = "/docs/static"
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")

_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" type="image/svg+xml" href="{assets}/favicon.svg">
{extra}</head><body>
{body}
</body></html>
"""
_INDEX_STYLE = "<style>body{font-family:sans-serif;margin:2rem auto;max-width:48rem}</style>\n"
_PAGE_BODY = """<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {spec_url}, dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"
}});
</script>"""


@dataclass(frozen=True)
class DocEntry:
    """One documented dialect.

    Attributes:
        name: Dialect slug used in URLs, e.g. ``"zelf"``.
        title: Human-readable title, e.g. ``"Zelf sessions"``.
        spec_path: Path of the hand-written ``openapi/<name>.yaml``.
        prefix: The path prefix the dialect's routes are mounted under (``""``: the vendor's own paths).
        moved_paths: ``(written, served)``: the spec's paths are written under ``written`` and served under
            ``served`` (the gateway's own spec, whose prefix is a setting); ``None``: served as written.
    """

    name: str
    title: str
    spec_path: Path
    prefix: str = ""
    moved_paths: tuple[str, str] | None = None

    @property
    def _rewritten(self) -> bool:
        return bool(self.prefix) or (self.moved_paths is not None and self.moved_paths[0] != self.moved_paths[1])

    def served_yaml(self) -> bytes:
        """The spec as served: the file itself, or with a prefix, the document with its ``servers`` under it.

        Raises:
            FileNotFoundError: the spec file is missing.
        """
        content = self.spec_path.read_bytes()
        if not self._rewritten:
            return content
        return yaml.safe_dump(self.served_document(content), sort_keys=False, allow_unicode=True).encode()

    def served_document(self, content: bytes | None = None) -> dict[str, Any]:
        """The spec as served, parsed.

        Raises:
            FileNotFoundError: the spec file is missing.
        """
        document: dict[str, Any] = yaml.safe_load(self.spec_path.read_bytes() if content is None else content)
        if self.prefix:
            # The spec's paths are the vendor's; the gateway serves them under the prefix: say so where OpenAPI
            # says where paths are, each server the spec names moved under it (a relative server: the prefix).
            servers = document.get("servers") or [{"url": "/"}]
            document["servers"] = [_under(server, self.prefix) for server in servers]
        if self.moved_paths is not None and self.moved_paths[0] != self.moved_paths[1]:
            written, served = self.moved_paths
            document["paths"] = {
                _moved(path, written, served): item for path, item in (document.get("paths") or {}).items()
            }
        return document


def _index_body(entries: Sequence[DocEntry]) -> str:
    """Render the list of dialects for the index page."""
    if not entries:
        return "<p>No API specs are registered.</p>"
    items = "".join(
        f'<li><a href="/docs/{n}">{html.escape(e.title)}</a> ({n}) - '
        f'<a href="/docs/{n}/openapi.yaml">openapi.yaml</a></li>\n'
        for e in entries
        for n in [html.escape(e.name)]
    )
    return f"<ul>\n{items}</ul>"


def docs_router(entries: Sequence[DocEntry]) -> Router:
    """Build the router serving the offline API docs under ``/docs``.

    Args:
        entries: The dialects to document, shown in this order.

    Returns:
        A router with the index, one Swagger UI page and raw spec per entry,
        and the vendored static assets; none of it is in the OpenAPI schema.

    Raises:
        ValueError: If a name is not a lowercase slug, is ``"static"``, or is
            used twice.
    """
    by_name: dict[str, DocEntry] = {}
    for entry in entries:
        if not _SLUG.fullmatch(entry.name) or entry.name == "static":
            raise ValueError(f"invalid docs entry name: {entry.name!r}")
        if entry.name in by_name:
            raise ValueError(f"duplicate docs entry name: {entry.name!r}")
        by_name[entry.name] = entry
    body = "<h1>API docs</h1>\n" + _index_body(entries)
    index_html = _HTML.format(title="API docs", assets=_ASSETS, extra=_INDEX_STYLE, body=body)

    def lookup(name: str) -> DocEntry:
        if name not in by_name:
            raise NotFoundException(f"no API docs for {name!r}")
        return by_name[name]

    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def docs_index() -> str:
        return index_html

    @get("/{name:str}", media_type=MediaType.HTML, include_in_schema=False)
    async def docs_page(name: FromPath[str]) -> str:
        entry = lookup(name)
        spec_url = json.dumps(f"/docs/{entry.name}/openapi.yaml")
        title = html.escape(f"{entry.title} - API docs")
        extra = f'<link rel="stylesheet" href="{_ASSETS}/swagger-ui.css">\n'
        body = _PAGE_BODY.format(assets=_ASSETS, spec_url=spec_url)
        return _HTML.format(title=title, assets=_ASSETS, extra=extra, body=body)

    @get("/{name:str}/openapi.yaml", include_in_schema=False)
    async def docs_spec(name: FromPath[str]) -> Response[bytes]:
        entry = lookup(name)
        try:
            content = entry.served_yaml()
        except FileNotFoundError:
            raise NotFoundException(f"spec file missing for {name!r}") from None
        return Response(content=content, media_type="application/yaml")

    @get("/{name:str}/openapi.json", include_in_schema=False)
    async def docs_spec_json(name: FromPath[str]) -> Response[bytes]:
        entry = lookup(name)
        try:
            document = entry.served_document()
        except FileNotFoundError:
            raise NotFoundException(f"spec file missing for {name!r}") from None
        # YAML can hold dates and the like, which JSON cannot: they are served as the text they were written as.
        return Response(content=msgspec.json.encode(document, enc_hook=str), media_type=MediaType.JSON)

    static = create_static_files_router(
        path="/static", directories=[_STATIC_DIR], name="docs-static", include_in_schema=False
    )
    return Router(
        path="/docs",
        route_handlers=[docs_index, docs_page, docs_spec, docs_spec_json, static],
        include_in_schema=False,
    )


def _under(server: Any, prefix: str) -> Any:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        return server
    url: str = server["url"]
    return server | {"url": url.rstrip("/") + prefix}


def _moved(path: str, written: str, served: str) -> str:
    if path == written or path.startswith(f"{written}/"):
        return served + path[len(written) :]
    return path
