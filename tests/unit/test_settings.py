from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiongate.settings import Settings, SettingsError


def test_defaults_are_sqlite_file_and_every_dialect():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite+aiosqlite:///./sessiongate.db"
    assert settings.dialects == ("*",)
    assert settings.migrate_at_start


@pytest.mark.parametrize("variable", ["SESSIONGATE_TEST_DATABASE_URL", "SESSIONGATE_TEST_REQUIRE_NGINX"])
def test_the_test_suites_own_variables_are_not_refused_as_settings(variable):
    # CI exports them for the whole run, so the CLI and serve the tests start see them too
    assert Settings.from_env({variable: "1"}) == Settings.from_env({})


@pytest.mark.parametrize("variable", ["SESSIONGATE_TEST_OTHER", "SESSIONGATE_REQUIRE_NGINX"])
def test_other_unknown_variables_are_still_refused(variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: "1"})


def test_environment_values_are_converted_to_their_types():
    settings = Settings.from_env(
        {
            "SESSIONGATE_DIALECTS": "zelf, issp",
            "SESSIONGATE_MAX_BODY_BYTES": "2048",
            "SESSIONGATE_SECURE_COOKIES": "true",
            "SESSIONGATE_JWT_KEYS": '{"k1": "' + "x" * 32 + '"}',
            "SESSIONGATE_OPENAPI_DIR": "/srv/specs",
            "SESSIONGATE_LOGIN_MAX_FAILURES": "3",
            "UNRELATED": "1",
        }
    )
    assert settings.dialects == ("zelf", "issp")
    assert settings.max_body_bytes == 2048
    assert settings.secure_cookies is True
    assert settings.jwt_keys == {"k1": "x" * 32}
    assert settings.openapi_dir == Path("/srv/specs")
    assert settings.login_max_failures == 3


def test_dialect_options_come_from_double_underscore_keys():
    settings = Settings.from_env({"SESSIONGATE_ZELF__LIFETIME": "300", "SESSIONGATE_ZELF__PREFIX": "/z"})
    assert settings.dialect_options == {"zelf": {"lifetime": "300", "prefix": "/z"}}


def test_postgres_does_not_migrate_at_start_unless_asked():
    assert not Settings(database_url="postgresql+asyncpg://x/y").migrate_at_start
    assert Settings(database_url="postgresql+asyncpg://x/y", auto_migrate=True).migrate_at_start


def test_bad_value_names_the_setting():
    with pytest.raises(SettingsError, match="max_body_bytes"):
        Settings.from_env({"SESSIONGATE_MAX_BODY_BYTES": "lots"})


def test_short_jwt_keys_are_refused():
    with pytest.raises(SettingsError, match="shorter than 32 bytes"):
        Settings.from_env({"SESSIONGATE_JWT_KEYS": '{"k": "short"}'})


def test_leeway_is_bounded():
    with pytest.raises(SettingsError, match="jwt_leeway"):
        Settings.from_env({"SESSIONGATE_JWT_LEEWAY": "3600"})


def test_allowed_origins_are_a_comma_list_of_origins():
    settings = Settings.from_env({"SESSIONGATE_ALLOWED_ORIGINS": "https://dashboard.example, http://[::1]:8080"})
    assert settings.allowed_origins == ("https://dashboard.example", "http://[::1]:8080")
    assert Settings.from_env({}).allowed_origins == ()


@pytest.mark.parametrize(
    "value", ["null", "*", "dashboard.example", "ftp://dashboard.example", "https://dashboard.example/app", "https://"]
)
def test_an_allowed_origin_that_is_not_an_origin_stops_start_up(value):
    with pytest.raises(SettingsError, match="allowed_origins"):
        Settings.from_env({"SESSIONGATE_ALLOWED_ORIGINS": value})


def test_settings_file_is_read_and_environment_wins(tmp_path: Path):
    config = tmp_path / "gateway.toml"
    config.write_text('max_body_bytes = 1000\nlog_level = "DEBUG"\n')
    settings = Settings.from_env({"SESSIONGATE_CONFIG": str(config), "SESSIONGATE_MAX_BODY_BYTES": "3000"})
    assert settings.max_body_bytes == 3000
    assert settings.log_level == "DEBUG"


def test_a_retry_after_shorter_than_a_second_is_refused_naming_the_setting():
    assert Settings.from_env({"SESSIONGATE_UNAVAILABLE_RETRY_AFTER": "30"}).unavailable_retry_after == 30
    with pytest.raises(SettingsError, match="unavailable_retry_after"):
        Settings.from_env({"SESSIONGATE_UNAVAILABLE_RETRY_AFTER": "0"})


@pytest.mark.parametrize("name", ["MAX_CONNECTIONS", "MAX_HEADER_COUNT", "HEADER_TIMEOUT", "KEEP_ALIVE_TIMEOUT"])
def test_a_server_limit_of_zero_is_refused_naming_it(name):
    with pytest.raises(SettingsError, match=name.lower()):
        Settings.from_env({f"SESSIONGATE_{name}": "0"})


def test_the_hashing_workers_and_queue_are_settings_with_checked_values():
    settings = Settings.from_env({"SESSIONGATE_PASSWORD_WORKERS": "3", "SESSIONGATE_PASSWORD_QUEUE": "0"})
    assert (settings.password_workers, settings.password_queue) == (3, 0)
    assert (Settings().password_workers, Settings().password_queue) == (None, None)
    with pytest.raises(SettingsError, match="password_workers"):
        Settings.from_env({"SESSIONGATE_PASSWORD_WORKERS": "0"})
    with pytest.raises(SettingsError, match="password_queue"):
        Settings.from_env({"SESSIONGATE_PASSWORD_QUEUE": "-1"})


def test_previous_digest_keys_are_one_key_a_json_list_or_a_file_of_one_key_per_line(tmp_path: Path):
    assert Settings.from_env({"SESSIONGATE_TOKEN_KEY_PREVIOUS": "old-digest-key"}).token_key_previous == (
        "old-digest-key",
    )
    listed = {"SESSIONGATE_TOKEN_KEY_PREVIOUS": '["one-digest-key", "two-digest-key"]'}
    assert Settings.from_env(listed).token_key_previous == ("one-digest-key", "two-digest-key")
    lines = tmp_path / "previous"
    lines.write_text("one-digest-key\ntwo-digest-key\n")
    from_file = {"SESSIONGATE_TOKEN_KEY_PREVIOUS_FILE": str(lines)}
    assert Settings.from_env(from_file).token_key_previous == ("one-digest-key", "two-digest-key")


def test_the_key_ring_is_read_again_every_thirty_seconds_unless_told_more_than_zero_and_at_most_an_hour():
    assert Settings.from_env({}).key_refresh_interval == 30
    assert Settings.from_env({"SESSIONGATE_KEY_REFRESH_INTERVAL": "0.5"}).key_refresh_interval == 0.5
    for refused in ("0", "-1", "3601"):
        with pytest.raises(SettingsError, match="key_refresh_interval"):
            Settings.from_env({"SESSIONGATE_KEY_REFRESH_INTERVAL": refused})


# SESSIONGATE_DATABASE_URL: read without SQLAlchemy (the settings are the lowest layer), as SQLAlchemy reads it.


POSTGRES_SPELLINGS = {
    "postgresql",
    "postgres",
    "postgresql+asyncpg",
    "postgres+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
}


def _as_sqlalchemy_reads(url: str) -> str:
    """What the engine was given when the settings read the URL with SQLAlchemy's ``make_url``: the reference."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        return "refused"
    scheme = parsed.drivername.lower()
    if scheme in {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}:
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if scheme not in POSTGRES_SPELLINGS:
        return "refused"
    query = dict(parsed.query)
    if "sslmode" in query and "ssl" not in query:
        query["ssl"] = query.pop("sslmode")
    return parsed.set(drivername="postgresql+asyncpg", query=query).render_as_string(hide_password=False)


def _as_settings_read(url: str) -> str:
    try:
        return Settings(database_url=url).database_url
    except SettingsError:
        return "refused"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("sqlite:///./gateway.db", "sqlite+aiosqlite:///./gateway.db"),
        ("sqlite+pysqlite:////srv/gateway.db", "sqlite+aiosqlite:////srv/gateway.db"),
        ("  sqlite://  ", "sqlite+aiosqlite://"),
        ("postgres://gw:p%40ss%2Fw%3Ard@db:5433/sessions", "postgresql+asyncpg://gw:p%40ss%2Fw%3Ard@db:5433/sessions"),
        ("postgresql://gw:p ss+w@db/s", "postgresql+asyncpg://gw:p ss+w@db/s"),
        ("postgresql+psycopg2://gw@[::1]:5432/s", "postgresql+asyncpg://gw@[::1]:5432/s"),
        ("postgresql://[fe80::1%25eth0]/s", "postgresql+asyncpg://[fe80::1%25eth0]/s"),
        ("postgresql://db/s?sslmode=require&b=2&a=1&a=0", "postgresql+asyncpg://db/s?a=1&a=0&b=2&ssl=require"),
        ("postgresql://db/s?sslmode=require&ssl=true", "postgresql+asyncpg://db/s?ssl=true&sslmode=require"),
        ("postgresql://db/s?application_name=gate way&empty=", "postgresql+asyncpg://db/s?application_name=gate+way"),
        ("postgresql:///s?host=/var/run/postgresql", "postgresql+asyncpg:///s?host=%2Fvar%2Frun%2Fpostgresql"),
    ],
)
def test_a_database_url_is_kept_as_the_shipped_drivers_url_its_password_query_and_host_intact(given, kept):
    assert Settings(database_url=given).database_url == kept == _as_sqlalchemy_reads(given)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("not a url at all", "is not a URL"),
        ("/var/lib/sessiongate/gateway.db", "is not a URL"),
        ("postgresql://gw:hunter2-secret@db:port/s", "is not a database URL that can be read"),
        ("postgresql://gw:hunter2-secret@db:/s", "is not a database URL that can be read"),
        ("://gw:hunter2-secret@db/s", "is not a database URL that can be read"),
        ("mysql://gw:hunter2-secret@db/s", "names a database sessiongate does not support ('mysql')"),
    ],
)
def test_a_database_url_the_gateway_cannot_use_is_one_line_naming_the_variable_never_the_password(given, said):
    with pytest.raises(SettingsError) as refused:
        Settings(database_url=given)
    message = str(refused.value)
    assert message.startswith(f"SESSIONGATE_DATABASE_URL {said}"), message
    assert "postgresql://" in message
    assert "sqlite:///" in message
    assert "hunter2" not in message
    assert "\n" not in message


_URL_PARTS = st.lists(st.sampled_from([*":/@?&=%[]+ #;!$'\"\x00\t.-_~é,1059ab", "%40", "%2F", "::1", "sslmode"]))


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+pysqlite", "mysql", "x"]),
    parts=st.lists(_URL_PARTS.map("".join), min_size=6, max_size=6),
    shape=st.sampled_from(
        ["{0}:{1}@{2}:{3}/{4}?{5}", "{2}/{4}?{5}", "{0}@[{2}]:{3}/{4}", "/{4}", " {0}{1}{2}{3}{4}{5} "]
    ),
)
def test_any_database_url_is_read_kept_or_refused_as_sqlalchemy_would(scheme, parts, shape):
    url = f"{scheme}://" + shape.format(*parts)
    assert _as_settings_read(url) == _as_sqlalchemy_reads(url)
