"""memo, the dialect installed from tests/dialect_package: built against the dialect SDK alone, with a table of its own
made by its own migration branch. Its routes work on every database; a session and its note are kept, and ended,
together (the SDK's ``also_write``), and the note is read through ``ctx.storage``; enabling it migrates its table, at
start or by ``sessiongate db upgrade``; disabling it leaves the table alone; readiness and ``db status`` count its
branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.exceptions import ImproperlyConfiguredException
from litestar.routes import HTTPRoute
from sessiongate_memo import MemoDialect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.dialects import registry
from sessiongate.readiness import ReadinessCheck
from sessiongate.storage.database import CORE, Migrations, schema_state, upgrade
from tests.conftest import ROOT
from tests.support.databases import on_database
from tests.support.server import free_port, run_command

BRANCH = Migrations.of({"memo": MemoDialect.migrations})  # type: ignore[dict-item]
CORE_HEAD = "0013"
PORTOS = "portos_0001"  # the branch of a dialect "*" enables: test databases are migrated with it


def notes(database_url: str) -> list[tuple[str, str]] | None:
    """The rows of memo's table (``None``: there is no such table)."""

    async def read(engine: AsyncEngine) -> list[tuple[str, str]] | None:
        async with engine.connect() as conn:
            exists = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "memo_note"))
            if not exists:
                return None
            rows = await conn.execute(text("SELECT session_id, note FROM memo_note ORDER BY note"))
            return [(row[0], row[1]) for row in rows]

    result: list[tuple[str, str]] | None = on_database(database_url, read)
    return result


def version_rows(database_url: str) -> set[str]:
    async def read(engine: AsyncEngine) -> set[str]:
        async with engine.connect() as conn:
            return {row[0] for row in await conn.execute(text("SELECT version_num FROM sg_alembic_version"))}

    rows: set[str] = on_database(database_url, read)
    return rows


def create(client: Any, note: str = "buy milk", subject: str = "alice") -> dict[str, Any]:
    response = client.post("/memo/sessions", json={"subject": subject, "note": note})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_session_keeps_its_note_in_memos_own_table_until_it_ends(make_client, database_url):
    client = make_client(dialects=("memo",))
    created = create(client)
    assert created["note"] == "buy milk"
    assert response_no_store(client.get("/memo/session", headers=bearer(created["token"]))) == {
        "id": created["id"],
        "subject": "alice",
        "note": "buy milk",
        "expiresAt": created["expiresAt"],
    }
    assert notes(database_url) == [(created["id"], "buy milk")]

    ended = client.delete("/memo/session", headers=bearer(created["token"]))
    assert ended.status_code == 204
    again = client.get("/memo/session", headers=bearer(created["token"]))
    assert again.status_code == 401
    assert again.json() == {"error": "session revoked"}
    assert notes(database_url) == []


def sessions_and_events(database_url: str) -> tuple[int, list[str]]:
    """How many sessions are stored, and the kinds of the audit events."""

    async def read(engine: AsyncEngine) -> tuple[int, list[str]]:
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM sg_session"))).scalar_one()
            kinds = [row[0] for row in await conn.execute(text("SELECT kind FROM sg_audit_event ORDER BY kind"))]
            return int(count), kinds

    found: tuple[int, list[str]] = on_database(database_url, read)
    return found


def inject(database_url: str, event: str, when: str, *, fault: str = "refused") -> None:
    """A trigger ``BEFORE <event> ON memo_note`` that, for the rows ``when`` holds of, refuses the statement
    (``refused``) or, on PostgreSQL, terminates the connection running it (``connection-lost``), as
    ``tests/storage/conftest.py`` injects faults."""
    if database_url.startswith("sqlite"):
        statements = [
            f"CREATE TRIGGER sg_fault BEFORE {event} ON memo_note WHEN {when} BEGIN "
            "SELECT RAISE(ROLLBACK, 'refused'); END"
        ]
    else:
        action = (
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(10);"
            if fault == "connection-lost"
            else "RAISE EXCEPTION 'refused';"
        )
        statements = [
            f"CREATE FUNCTION sg_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {action} RETURN NEW; END $$",
            f"CREATE TRIGGER sg_fault BEFORE {event} ON memo_note FOR EACH ROW WHEN ({when}) "
            "EXECUTE FUNCTION sg_fault()",
        ]
    on_database(database_url, lambda engine: run_all(engine, statements))


def heal(database_url: str) -> None:
    """Drop the injected fault (on PostgreSQL also so the database is handed on to the next test, not dropped)."""
    if database_url.startswith("sqlite"):
        statements = ["DROP TRIGGER IF EXISTS sg_fault"]
    else:
        statements = ["DROP TRIGGER IF EXISTS sg_fault ON memo_note", "DROP FUNCTION IF EXISTS sg_fault()"]
    on_database(database_url, lambda engine: run_all(engine, statements))


async def run_all(engine: AsyncEngine, statements: list[str]) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


def test_a_note_that_cannot_be_kept_takes_its_session_with_it(make_client, database_url):
    client = make_client(dialects=("memo",))
    inject(database_url, "INSERT", "NEW.note = 'poison'")

    refused = client.post("/memo/sessions", json={"subject": "alice", "note": "poison"})

    # A refused statement is what it is everywhere in the gateway: a 500, in the dialect's error body.
    assert (refused.status_code, refused.json()) == (500, {"error": "internal error"})
    assert sessions_and_events(database_url) == (0, [])  # no session, no session.created: nothing half-written
    kept = create(client, note="fine")
    heal(database_url)
    assert notes(database_url) == [(kept["id"], "fine")]
    assert sessions_and_events(database_url) == (1, ["session.created"])


def test_a_database_lost_while_keeping_the_note_is_an_outage_and_creates_nothing(make_client, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("a trigger cannot make SQLite unavailable; tests/storage/test_dialect_rows.py interrupts it")
    client = make_client(dialects=("memo",))
    inject(database_url, "INSERT", "NEW.note = 'poison'", fault="connection-lost")

    lost = client.post("/memo/sessions", json={"subject": "alice", "note": "poison"})

    assert (lost.status_code, lost.json()) == (503, {"error": "service unavailable"})
    assert int(lost.headers["retry-after"]) >= 1
    assert sessions_and_events(database_url) == (0, [])
    kept = create(client, note="fine")  # the next request gets a new connection
    heal(database_url)
    assert notes(database_url) == [(kept["id"], "fine")]


def test_a_session_whose_note_cannot_be_forgotten_does_not_end(make_client, database_url):
    client = make_client(dialects=("memo",))
    created = create(client, note="stuck")
    inject(database_url, "DELETE", "OLD.note = 'stuck'")

    refused = client.delete("/memo/session", headers=bearer(created["token"]))

    assert (refused.status_code, refused.json()) == (500, {"error": "internal error"})
    assert response_no_store(client.get("/memo/session", headers=bearer(created["token"])))["note"] == "stuck"
    heal(database_url)
    assert client.delete("/memo/session", headers=bearer(created["token"])).status_code == 204
    assert client.get("/memo/session", headers=bearer(created["token"])).status_code == 401
    assert notes(database_url) == []
    assert sessions_and_events(database_url) == (1, ["session.created", "session.revoked"])


def response_no_store(response: Any) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def test_memos_errors_are_its_own_shape(make_client):
    client = make_client(dialects=("memo",))
    assert client.get("/memo/session").json() == {"error": "a bearer token is required"}
    assert client.get("/memo/session", headers=bearer("nope")).status_code == 401
    refused = client.post("/memo/sessions", json={"subject": "alice", "note": "a\x00b"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "text must not contain NUL characters"}
    assert client.post("/memo/sessions", json={"subject": ""}).status_code == 400
    assert client.post("/memo/sessions", json={"subject": "a", "colour": "red"}).status_code == 400
    assert client.post("/memo/sessions", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    wrong = client.put("/memo/session")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "OPTIONS, DELETE, GET")
    assert wrong.json() == {"error": "method not allowed"}


def test_another_dialects_token_is_not_memos(make_client):
    client = make_client(dialects=("memo", "portos"))
    other = client.post("/memo/sessions", json={"subject": "alice"}).json()["token"]
    assert client.get("/memo/session", headers=bearer(other)).status_code == 200
    assert client.get("/memo/session", headers=bearer(other + "x")).status_code == 401


def test_star_leaves_memo_out_until_it_is_named():
    # memo is opt_in: an example installed for the tests is not served by a gateway that enables "everything".
    assert "memo" in registry.installed()
    assert "memo" not in registry.available()
    assert "memo" not in [p.name for p in registry.load(("*",), {})]
    assert [p.name for p in registry.load(("*", "memo"), {})][-1] == "memo"
    assert [p.name for p in registry.load(("memo",), {"memo": {"lifetime": "60"}})] == ["memo"]


def test_the_served_spec_is_the_one_memo_ships_and_names_every_route(make_client):
    client = make_client(dialects=("memo",))
    shipped = MemoDialect.spec_path(MemoDialect(), ROOT / "openapi")
    assert shipped.parent == Path(MemoDialect.migrations).parent  # type: ignore[arg-type]
    assert client.get("/docs/memo/openapi.yaml").content == shipped.read_bytes()
    assert "/docs/memo" in client.get("/docs").text
    document = yaml.safe_load(shipped.read_text())
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item if m != "parameters"}
    served = {
        (method, route.path)
        for route in client.app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get("dialect") == "memo"
        for method in handler.http_methods
        if method != "HEAD"
    }
    assert served == documented


def test_enabling_memo_migrates_its_branch_on_a_database_at_the_cores_head(make_client, database_url):
    # database_url is migrated to the core's head (0013), as every existing gateway's database is (portos's too).
    assert version_rows(database_url) == {CORE_HEAD, PORTOS}
    assert notes(database_url) is None
    make_client(dialects=("memo",))
    assert version_rows(database_url) == {CORE_HEAD, PORTOS, "memo_0001"}  # the core keeps its row: memo's is its own
    assert notes(database_url) == []
    state = on_database(database_url, lambda engine: schema_state(engine, BRANCH))
    assert (state.current, state.pending, state.unknown, state.others) == ((CORE_HEAD, "memo_0001"), (), (), (PORTOS,))


def test_disabling_memo_leaves_its_table_and_rows_alone(make_client, database_url):
    created = create(make_client(dialects=("memo",)))
    client = make_client(dialects=("zelf",))  # memo no longer enabled: the gateway starts and is ready
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.post("/memo/sessions", json={"subject": "a"}).status_code == 404
    assert notes(database_url) == [(created["id"], "buy milk")]
    assert version_rows(database_url) == {CORE_HEAD, PORTOS, "memo_0001"}
    state = on_database(database_url, lambda engine: schema_state(engine, CORE))
    assert (state.current, state.pending, state.up_to_date) == ((CORE_HEAD,), (), True)
    assert set(state.others) == {PORTOS, "memo_0001"}
    # The core's own upgrade walks past the row it has no script of, and leaves it.
    on_database(database_url, upgrade)
    assert version_rows(database_url) == {CORE_HEAD, PORTOS, "memo_0001"}
    # Enabled again, it finds its table as it was.
    again = make_client(dialects=("memo",))
    assert again.get("/memo/session", headers=bearer(created["token"])).json()["note"] == "buy milk"


def test_a_new_database_gets_the_core_then_memos_branch(empty_database_url):
    on_database(empty_database_url, lambda engine: upgrade(engine, migrations=BRANCH))
    assert version_rows(empty_database_url) == {CORE_HEAD, "memo_0001"}
    assert notes(empty_database_url) == []


def test_readiness_waits_for_the_enabled_dialects_branch(database_url):
    async def ready(engine: AsyncEngine) -> tuple[Any, Any]:
        return await ReadinessCheck(engine, BRANCH)(), await ReadinessCheck(engine)()

    with_memo, without = on_database(database_url, ready)
    assert without.status == "ok"
    assert with_memo.status == "unavailable"
    [reason] = with_memo.reasons
    assert (reason.check, reason.current, reason.head) == ("migrations", [CORE_HEAD], [CORE_HEAD, "memo_0001"])
    on_database(database_url, lambda engine: upgrade(engine, migrations=BRANCH))
    with_memo, without = on_database(database_url, ready)
    assert with_memo.status == without.status == "ok"


@pytest.mark.slow
def test_a_gateway_with_memo_enabled_refuses_to_start_on_a_database_without_its_table(database_url, tmp_path):
    env = {"SESSIONGATE_DIALECTS": "memo", "SESSIONGATE_AUTO_MIGRATE": "false"}
    refused = run_command(database_url, tmp_path, "serve", "--port", str(free_port()), env=env)
    assert refused.returncode == 4, refused.stderr
    assert "1 migration pending" in refused.stderr
    assert notes(database_url) is None


@pytest.mark.slow
def test_db_commands_run_with_the_enabled_dialects(database_url, tmp_path):
    env = {"SESSIONGATE_DIALECTS": "memo", "SESSIONGATE_AUTO_MIGRATE": "false"}
    status = run_command(database_url, tmp_path, "db", "status", env=env)
    assert status.returncode == 4, status.stderr
    assert "pending: memo_0001" in status.stdout
    assert run_command(database_url, tmp_path, "db", "upgrade", env=env).returncode == 0
    assert notes(database_url) == []
    status = run_command(database_url, tmp_path, "db", "status", env=env)
    assert status.returncode == 0, status.stdout
    assert "head:    0013, memo_0001" in status.stdout
    history = run_command(database_url, tmp_path, "db", "history", env=env).stdout
    assert "memo_0001  memo: a note per session" in history
    # Without memo, the core's status is up to date and names memo's row as another dialect's, left alone.
    without = run_command(database_url, tmp_path, "db", "status", env={"SESSIONGATE_DIALECTS": "zelf,portos"})
    assert without.returncode == 0, without.stdout
    assert "others:  memo_0001 (of dialects not enabled: left alone)" in without.stdout
    assert (
        "memo_0001"
        not in run_command(database_url, tmp_path, "db", "history", env={"SESSIONGATE_DIALECTS": "zelf"}).stdout
    )


@pytest.mark.slow
def test_downgrading_to_base_refuses_while_a_disabled_dialects_tables_remain(database_url, tmp_path):
    assert run_command(database_url, tmp_path, "db", "upgrade", env={"SESSIONGATE_DIALECTS": "memo"}).returncode == 0
    refused = run_command(
        database_url, tmp_path, "db", "downgrade", "base", env={"SESSIONGATE_DIALECTS": "zelf,portos"}
    )
    assert refused.returncode != 0
    assert "memo_0001 of dialects not enabled" in refused.stderr
    assert version_rows(database_url) == {CORE_HEAD, PORTOS, "memo_0001"}


def write_branch(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(body)
    return folder


GOOD = """
revision = "acme_0001"
down_revision = None
branch_labels = ("acme",)
depends_on = None
needs_core = "0013"
def upgrade(): pass
def downgrade(): pass
"""


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (('"acme_0001"', '"a0001"'), "does not start with 'acme_'"),
        (('branch_labels = ("acme",)', "branch_labels = None"), "is not labelled branch_labels = ('acme',)"),
        (('needs_core = "0013"', 'needs_core = "0099"'), "needs core revision '0099'"),
        (("depends_on = None", 'depends_on = "0013"'), "has depends_on"),
    ],
)
def test_a_branch_that_breaks_the_rules_is_refused_at_start(tmp_path, change, said):
    folder = write_branch(tmp_path / "versions", "acme_0001", GOOD.replace(*change))

    class Acme(MemoDialect):
        name = "acme"
        migrations = folder

    with pytest.raises(ImproperlyConfiguredException, match=said.replace("(", r"\(").replace(")", r"\)")):
        registry.migrations([Acme()])


def test_a_branch_as_the_rules_say_is_accepted(tmp_path):
    folder = write_branch(tmp_path / "versions", "acme_0001", GOOD)

    class Acme(MemoDialect):
        name = "acme"
        migrations = folder

    assert registry.migrations([Acme()]).branches == (("acme", folder),)
    Acme.migrations = tmp_path / "nowhere"
    with pytest.raises(ImproperlyConfiguredException, match="does not exist"):
        registry.migrations([Acme()])


def test_memo_is_the_package_in_the_tree_and_imports_sessiongate_only_through_the_sdk():
    from tests.contract.test_layers import imported_modules

    package = ROOT / "tests" / "dialect_package" / "sessiongate_memo"
    assert Path(MemoDialect.spec_path(MemoDialect(), ROOT)).is_relative_to(package)
    for path in package.rglob("*.py"):
        inner = [m for m in imported_modules(path) if m.split(".")[0] == "sessiongate" and m != "sessiongate.dialect"]
        assert inner == [], path
        # Its table is reached through the gateway's doors (also_write, ctx.storage), never on an engine of its own.
        assert "engine" not in path.read_text(), path
