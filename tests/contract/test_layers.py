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


def test_the_core_imports_neither_litestar_nor_sqlalchemy():
    for path in (SRC / "core").rglob("*.py"):
        bad = [m for m in imported_modules(path) if m.split(".")[0] in {"litestar", "sqlalchemy", "advanced_alchemy"}]
        assert bad == [], path


DATABASE_LIBRARIES = {"sqlalchemy", "advanced_alchemy", "alembic", "aiosqlite", "asyncpg"}


def test_only_storage_imports_a_database_library():
    """Storage is the only door to the database: no other module of sessiongate imports SQLAlchemy, advanced-alchemy,
    Alembic or a driver, not even for type checking or inside a function (each store's interface is in ``core``)."""
    offenders = {
        str(path.relative_to(SRC)): sorted(m for m in imported_modules(path) if m.split(".")[0] in DATABASE_LIBRARIES)
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "storage"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_dialects_import_sessiongate_only_through_the_sdk(plugin):
    for path in plugin.rglob("*.py"):
        inner = [m for m in imported_modules(path) if m.split(".")[0] == "sessiongate" and m != "sessiongate.dialect"]
        assert inner == [], path


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_dialects_never_import_each_other(plugin):
    for path in plugin.rglob("*.py"):
        others = [m for m in imported_modules(path) if m.startswith("sessiongate_") and m.split(".")[0] != plugin.name]
        assert others == [], path


LAYERS = (
    # What everything may use: the settings, the counters (and their values' updates), the caller's address.
    {"settings", "meters", "metric_values", "addresses"},
    {"core"},  # the gateway's vocabulary (models, errors, the storage seam): pure
    {"storage"},  # the only code that knows SQL: every table, the session store, the runners
    {"tokens"},  # token formats and key material (kept in storage)
    {"sessions"},  # the session service and the audit log, over storage and tokens
    {"identity"},  # principals, passwords, tenants, throttles: they end sessions through the service
    {"runtime"},  # the composition root: the services built from the settings
    {"dialects", "dialect"},  # the dialect plugin base every dialect builds on, and the SDK that exports it
    {"docs", "errors", "readiness", "health"},  # the app's shared HTTP parts
    {"gate"},  # the gateway's own API
    {"observability"},
    {"lifespan", "sweeper", "heap"},  # the app's life: services opened and dialects bound, background tasks
    {"app", "server", "granian_edge", "cli", "commands", "__main__", "__init__"},  # the entry points
)
"""sessiongate's packages (and top-level modules), lowest first: each may import its own layer's and lower ones'."""


def package_of(module: str) -> str | None:
    """The package (or top-level module) of sessiongate that ``module`` is or is in; ``None`` for any other."""
    parts = module.split(".")
    if parts[0] != "sessiongate" or len(parts) < 2:
        return None
    found = SRC / parts[1]
    return parts[1] if found.is_dir() or found.with_suffix(".py").is_file() else None  # not a name like __version__


def package_imports() -> dict[str, dict[str, set[str]]]:
    """Each package's imports of other packages, with the files that make them: every import, those made only for
    type checking or inside a function included (a lazy import is still a dependency)."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        source = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = names if node.module == "sessiongate" else [node.module]
            for target in filter(None, map(package_of, targets)):
                if target != source:
                    found.setdefault(source, {}).setdefault(target, set()).add(str(relative))
    return found


def layer_of(package: str) -> int:
    (index,) = [i for i, layer in enumerate(LAYERS) if package in layer]
    return index


def test_every_package_has_its_layer():
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert packages == set().union(*LAYERS)


def test_the_sdk_exports_what_it_lists_and_ships_its_types():
    from sessiongate import dialect

    assert [name for name in dialect.__all__ if not hasattr(dialect, name)] == []
    assert (SRC / "py.typed").is_file()


def test_no_package_imports_one_above_it():
    upward = {
        f"{source} -> {target}": sorted(files)
        for source, targets in package_imports().items()
        for target, files in targets.items()
        if layer_of(target) > layer_of(source)
    }
    assert upward == {}


def test_the_package_graph_has_no_cycle():
    graph = {source: set(targets) for source, targets in package_imports().items()}
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        if package in done:
            return
        for target in sorted(graph.get(package, ())):
            visit(target, (*path, package))
        done.add(package)

    for package in sorted(graph):
        visit(package, ())
