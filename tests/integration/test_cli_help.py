"""Reading the command line is quick: ``sessiongate --help``, and every command's, imports neither the database layer
nor the web framework (what they run with is imported when they run). Each test runs the real CLI in a process of its
own and reads, from ``python -X importtime``, every module that process imported."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from sessiongate.cli import cli
from sessiongate.commands import admin_tokens, sessions

HEAVY = frozenset(
    {
        "sqlalchemy",
        "advanced_alchemy",
        "alembic",
        "litestar",
        "uvicorn",
        "asyncpg",
        "aiosqlite",
        "argon2",
        "structlog",
        "prometheus_client",
        "zxcvbn",
    }
)
"""What only a command's work needs, never its help: the database, the web framework, the server, the hashes."""


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``group``, as the words that name it on the command line (``()``: the root)."""
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += command_paths(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def imported(*args: str) -> set[str]:
    """The top-level packages ``sessiongate <args>`` imported, run as an operator runs it; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sessiongate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: sessiongate"), done.stdout
    # Each line: "import time: <self> | <cumulative> | <indent><dotted name>".
    lines = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {name.split(".")[0] for name in lines}
    assert "sessiongate" in names, done.stderr  # the lines were read: the CLI itself is among them
    return names


@pytest.mark.slow
@pytest.mark.parametrize("path", command_paths(cli), ids=lambda path: " ".join(("sessiongate", *path)))
def test_help_imports_neither_the_database_layer_nor_the_web_framework(path):
    names = imported(*path, "--help")
    assert sorted(names & HEAVY) == []
    assert sorted(name for name in names if name.startswith("sessiongate_")) == []  # nor any dialect


def test_the_choices_written_out_for_the_command_line_are_the_gateways():
    from sessiongate.gate import admin
    from sessiongate.gate.tokens import SCOPES

    assert admin_tokens.SCOPES == SCOPES
    assert (sessions.STATES, sessions.MAX_LIMIT) == (admin.STATES, admin.MAX_LIMIT)
