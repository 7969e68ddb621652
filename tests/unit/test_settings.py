from __future__ import annotations

from pathlib import Path

import pytest

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
