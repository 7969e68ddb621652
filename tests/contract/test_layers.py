from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "sessiongate"
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("sessiongate_*") if p.is_dir())


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_no_dialect():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.startswith("sessiongate_"))
        for path in SRC.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_models_and_service_import_neither_litestar_nor_sqlalchemy():
    for path in (SRC / "core").rglob("*.py"):
        bad = [m for m in imported_modules(path) if m.split(".")[0] in {"litestar", "sqlalchemy", "advanced_alchemy"}]
        assert bad == [], path


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_dialects_never_import_each_other(plugin):
    for path in plugin.rglob("*.py"):
        others = [m for m in imported_modules(path) if m.startswith("sessiongate_") and m.split(".")[0] != plugin.name]
        assert others == [], path
