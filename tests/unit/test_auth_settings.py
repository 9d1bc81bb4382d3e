"""The auth settings: defaults, the separate auth database, and clear errors for bad values."""

from __future__ import annotations

import pytest

from entrypoints.settings import Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({"DEVICELAB_DATABASE_URL": "sqlite:///lab.db"})
    assert settings.auth_database_url == "sqlite:///lab.db"  # the lab's database by default
    assert settings.session_idle_s == 12 * 3600
    assert settings.session_lifetime_s == 7 * 24 * 3600
    assert settings.login_rate_limit == "10/minute"
    assert (settings.auth_mode, settings.auth_url, settings.auth_cache_s) == ("local", "", 30)
    assert settings.redis_url == ""
    assert settings.trusted_proxies == 0


def test_everything_can_be_set():
    settings = Settings.from_env(
        {
            "DEVICELAB_DATABASE_URL": "sqlite:///lab.db",
            "DEVICELAB_AUTH_DATABASE_URL": "postgresql+psycopg2://auth@db/auth",
            "DEVICELAB_SESSION_IDLE_S": "1800",
            "DEVICELAB_SESSION_LIFETIME_S": "86400",
            "DEVICELAB_LOGIN_RATE_LIMIT": "5 per 30 seconds",
            "DEVICELAB_REDIS_URL": "redis://127.0.0.1:6379/2",
            "DEVICELAB_AUTH_MODE": "Remote",
            "DEVICELAB_AUTH_URL": "http://auth.lab:8001/",
            "DEVICELAB_AUTH_CACHE_S": "0",
        }
    )
    assert settings.auth_database_url == "postgresql+psycopg2://auth@db/auth"
    assert (settings.session_idle_s, settings.session_lifetime_s) == (1800, 86400)
    assert settings.login_rate_limit == "5 per 30 seconds"
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
    assert (settings.auth_mode, settings.auth_url, settings.auth_cache_s) == (
        "remote",
        "http://auth.lab:8001",
        0,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DEVICELAB_AUTH_MODE": "ldap"}, "DEVICELAB_AUTH_MODE"),
        ({"DEVICELAB_AUTH_MODE": "remote"}, "DEVICELAB_AUTH_URL"),
        ({"DEVICELAB_AUTH_MODE": "remote", "DEVICELAB_AUTH_URL": "auth.lab"}, "DEVICELAB_AUTH_URL"),
        ({"DEVICELAB_LOGIN_RATE_LIMIT": "lots"}, "DEVICELAB_LOGIN_RATE_LIMIT"),
        ({"DEVICELAB_SESSION_IDLE_S": "10"}, "DEVICELAB_SESSION_IDLE_S"),
        ({"DEVICELAB_SESSION_LIFETIME_S": "a week"}, "DEVICELAB_SESSION_LIFETIME_S"),
        ({"DEVICELAB_AUTH_CACHE_S": "-1"}, "DEVICELAB_AUTH_CACHE_S"),
        ({"DEVICELAB_REDIS_URL": "http://cache:6379"}, "DEVICELAB_REDIS_URL"),
        ({"DEVICELAB_TRUSTED_PROXIES": "-1"}, "DEVICELAB_TRUSTED_PROXIES"),
    ],
)
def test_bad_values_name_the_variable(env, names):
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)
