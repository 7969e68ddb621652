from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.core.errors import Unauthenticated
from sessiongate.runtime import open_services
from sessiongate.settings import Settings, SettingsError
from sessiongate.storage.database import alchemy_config, upgrade
from sessiongate.tokens.keys import MIN_READ_INTERVAL, KeyMaterial, KeyMaterialError, load_key_material

MASTER = "master-key-0123456789abcdef-0123456789abcdef"
OTHER = "another-master-key-0123456789abcdef-0123456"


def test_the_master_key_comes_from_the_environment_or_from_a_file_without_its_trailing_newline(tmp_path: Path):
    assert Settings.from_env({"SESSIONGATE_SECRET_KEY": MASTER}).secret_key == MASTER
    secret = tmp_path / "master"
    secret.write_text(MASTER + "\n")
    assert Settings.from_env({"SESSIONGATE_SECRET_KEY_FILE": str(secret)}).secret_key == MASTER
    assert Settings.from_env({}).secret_key is None


def test_a_master_key_is_taken_as_it_is_even_when_it_looks_like_json():
    key = '{"not": "a map"} ' + "x" * 32
    assert Settings.from_env({"SESSIONGATE_SECRET_KEY": key}).secret_key == key


def test_previous_master_keys_are_one_key_a_json_list_or_a_file_of_one_key_per_line(tmp_path: Path):
    one = {"SESSIONGATE_SECRET_KEY": MASTER, "SESSIONGATE_SECRET_KEY_PREVIOUS": OTHER}
    assert Settings.from_env(one).secret_key_previous == (OTHER,)
    listed = {"SESSIONGATE_SECRET_KEY": MASTER, "SESSIONGATE_SECRET_KEY_PREVIOUS": f'["{OTHER}", "{"y" * 32}"]'}
    assert Settings.from_env(listed).secret_key_previous == (OTHER, "y" * 32)
    lines = tmp_path / "previous"
    lines.write_text(f"{OTHER}\n{'y' * 32}\n")
    from_file = {"SESSIONGATE_SECRET_KEY": MASTER, "SESSIONGATE_SECRET_KEY_PREVIOUS_FILE": str(lines)}
    assert Settings.from_env(from_file).secret_key_previous == (OTHER, "y" * 32)


def test_a_short_master_key_is_refused_without_being_shown():
    with pytest.raises(SettingsError, match="secret_key") as refused:
        Settings.from_env({"SESSIONGATE_SECRET_KEY": "short-master-key"})
    assert "short-master-key" not in str(refused.value)


def test_a_master_key_given_twice_is_refused(tmp_path: Path):
    secret = tmp_path / "master"
    secret.write_text(MASTER)
    with pytest.raises(SettingsError, match="SESSIONGATE_SECRET_KEY_FILE"):
        Settings.from_env({"SESSIONGATE_SECRET_KEY": MASTER, "SESSIONGATE_SECRET_KEY_FILE": str(secret)})


def test_an_unreadable_key_file_is_refused_naming_the_variable(tmp_path: Path):
    with pytest.raises(SettingsError, match="SESSIONGATE_SECRET_KEY_FILE"):
        Settings.from_env({"SESSIONGATE_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_previous_master_keys_need_a_current_one():
    with pytest.raises(SettingsError, match="secret_key_previous"):
        Settings.from_env({"SESSIONGATE_SECRET_KEY_PREVIOUS": OTHER})


@pytest.fixture
async def engine(database_url) -> AsyncIterator[AsyncEngine]:
    built = alchemy_config(database_url).get_engine()
    await upgrade(built)
    yield built
    await built.dispose()


async def load(engine: AsyncEngine, **settings: object) -> KeyMaterial:
    url = engine.url.render_as_string(hide_password=False)
    return await load_key_material(engine, Settings(database_url=url, **settings))  # type: ignore[arg-type]


async def stored(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        return dict((await conn.execute(text("SELECT name, value FROM sg_secret"))).tuples().all())


def keys_of(material: KeyMaterial) -> list[str]:
    return [*material.jwt_keys.values(), material.digest_key.decode()]


@pytest.mark.anyio
async def test_with_a_master_key_no_generated_key_is_in_the_database_and_every_start_reads_the_same_keys(engine):
    first = await load(engine, secret_key=MASTER)
    kept = await stored(engine)
    assert set(kept) == {"jwt:auto-1", "digest-key"}
    assert not any(key in value for key in keys_of(first) for value in kept.values())
    assert keys_of(await load(engine, secret_key=MASTER)) == keys_of(first)


@pytest.mark.anyio
async def test_keys_kept_in_clear_are_encrypted_by_the_first_start_with_a_master_key_and_stay_the_same(engine):
    in_clear = await load(engine)
    assert sorted((await stored(engine)).values()) == sorted(keys_of(in_clear))
    assert keys_of(await load(engine, secret_key=MASTER)) == keys_of(in_clear)
    encrypted = await stored(engine)
    assert not any(key in value for key in keys_of(in_clear) for value in encrypted.values())


@pytest.mark.anyio
async def test_encrypted_keys_without_the_master_key_stop_the_start_and_no_new_key_is_made(engine):
    first = await load(engine, secret_key=MASTER)
    kept = await stored(engine)
    with pytest.raises(KeyMaterialError, match="SESSIONGATE_SECRET_KEY") as refused:
        await load(engine)
    assert "\n" not in str(refused.value)
    assert await stored(engine) == kept
    assert not any(key in str(refused.value) for key in [*keys_of(first), MASTER])


@pytest.mark.anyio
async def test_keys_encrypted_under_another_master_key_stop_the_start(engine):
    await load(engine, secret_key=MASTER)
    kept = await stored(engine)
    with pytest.raises(KeyMaterialError, match="another master key"):
        await load(engine, secret_key=OTHER)
    assert await stored(engine) == kept


@pytest.mark.anyio
async def test_a_previous_master_key_still_reads_the_keys_which_are_then_encrypted_under_the_current_one(engine):
    first = await load(engine, secret_key=MASTER)
    assert keys_of(await load(engine, secret_key=OTHER, secret_key_previous=(MASTER,))) == keys_of(first)
    assert keys_of(await load(engine, secret_key=OTHER)) == keys_of(first)
    with pytest.raises(KeyMaterialError, match="another master key"):
        await load(engine, secret_key=MASTER)


@pytest.mark.anyio
async def test_keys_given_in_the_settings_are_never_stored(engine):
    material = await load(engine, secret_key=MASTER, jwt_keys={"k1": "j" * 32}, token_key="d" * 32)
    assert keys_of(material) == ["j" * 32, "d" * 32]
    assert await stored(engine) == {}


def said_kept_in_clear(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if "SESSIONGATE_SECRET_KEY" in line]


def test_an_app_started_in_production_without_a_master_key_says_once_that_its_keys_are_kept_in_clear(
    make_client, monkeypatch
):
    # The gateway's handler writes to the sys.stderr of the moment the app is made: a buffer of the test's own.
    gateway_log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", gateway_log)
    make_client(dialects=("zelf",), environment="production")
    said = said_kept_in_clear(gateway_log.getvalue())
    assert [line["level"] for line in said] == ["warning"]
    assert said[0]["keys"] == ["jwt:auto-1", "digest-key"]


def test_an_app_with_a_master_key_or_not_in_production_says_nothing_of_keys_in_clear(make_client, monkeypatch):
    gateway_log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", gateway_log)
    make_client(dialects=("zelf",))
    make_client(dialects=("zelf",), environment="production", secret_key=MASTER)
    assert "started" in gateway_log.getvalue()  # the gateway did log, so the check below means something
    assert said_kept_in_clear(gateway_log.getvalue()) == []


@pytest.mark.anyio
async def test_tokens_naming_unknown_keys_make_a_process_read_the_ring_at_most_once_a_second(database_url):
    settings = Settings(database_url=database_url, sweep_interval=0)
    async with open_services(settings, migrate=False) as services:
        token = jwt.encode({"exp": 2**40, "iat": 0}, "f" * 40, algorithm="HS256", headers={"kid": "made-up"})
        reads = services.key_ring.reads
        started = time.monotonic()
        for _ in range(2):
            refused = await asyncio.gather(
                *(services.keys.verify(token, now=services.clock()) for _ in range(20)), return_exceptions=True
            )
            assert all(isinstance(answer, Unauthenticated) for answer in refused)
        assert services.key_ring.reads == reads + 2
        assert time.monotonic() - started >= MIN_READ_INTERVAL
