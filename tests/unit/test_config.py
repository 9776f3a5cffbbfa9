from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings


def test_defaults_are_the_embedded_adapters(tmp_path: Path) -> None:
    settings = load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)})
    assert settings.storage.adapter == "sqlite"
    assert settings.sqlite_path == tmp_path / "portal.sqlite3"
    assert settings.server.port == 8080
    assert settings.auth.argon2.memory_cost_kib >= 19456


def test_environment_overrides_any_key_by_path(tmp_path: Path) -> None:
    settings = load_settings(environ={
        "PORTAL_DATA_DIR": str(tmp_path), "PORTAL_STORAGE__ADAPTER": "postgres",
        "PORTAL_SERVER__PORT": "9000", "PORTAL_AUTH__THROTTLE__WINDOW_SECONDS": "60",
        "PORTAL_WEB__SECURE_COOKIES": "true",
        # Not settings: the config file's path and the CLI's password.
        "PORTAL_CONFIG": "", "PORTAL_USER_PASSWORD": "x"})
    assert settings.storage.adapter == "postgres"
    assert settings.server.port == 9000
    assert settings.auth.throttle.window_seconds == 60
    assert settings.web.secure_cookies is True


def test_a_file_is_read_over_the_defaults_and_env_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text("storage:\n  adapter: postgres\n  pool_max: 30\nserver:\n  port: 7000\n")
    settings = load_settings(config, environ={"PORTAL_SERVER__PORT": "7100"})
    assert settings.storage.pool_max == 30 and settings.storage.adapter == "postgres"
    assert settings.storage.pool_min == 1  # untouched defaults stay
    assert settings.server.port == 7100
    via_env = load_settings(environ={"PORTAL_CONFIG": str(config)})
    assert via_env.server.port == 7000


@pytest.mark.parametrize(("environ", "message"), [
    ({"PORTAL_STORAGE__ADAPTER": "mysql"},
     "storage.adapter (from PORTAL_STORAGE__ADAPTER): Input should be 'sqlite' or 'postgres'"),
    ({"PORTAL_SERVER__PORT": "eighty"}, "server.port (from PORTAL_SERVER__PORT)"),
    ({"PORTAL_STORAGE__ADPATER": "sqlite"},
     "storage.adpater (from PORTAL_STORAGE__ADPATER): unknown setting"),
    ({"PORTAL_AUTH__ARGON2__MEMORY_COST_KIB": "1024"}, "auth.argon2.memory_cost_kib"),
    ({"PORTAL_BASE_URL": "not a url"}, "base_url"),
])
def test_invalid_settings_name_the_key_and_its_source(environ: dict[str, str],
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=environ)
    assert message in str(raised.value)


def test_unreadable_or_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_settings(tmp_path / "missing.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("storage: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, environ={})
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(listed, environ={})
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("storage:\n  pool_max: 0\n")
    with pytest.raises(ConfigError, match=f"storage.pool_max \\(from {bad_key}\\)"):
        load_settings(bad_key, environ={})


def test_variables_naming_no_section_are_ignored_not_fatal(tmp_path: Path) -> None:
    from app.config import ignored_environment

    # What Kubernetes adds to every pod for a Service named "portal".
    environ = {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_PORT": "tcp://10.0.0.1:8080",
               "PORTAL_SERVICE_HOST": "10.0.0.1", "PORTAL_SERVICE_PORT": "8080"}
    settings = load_settings(environ=environ)
    assert settings.server.port == 8080
    assert ignored_environment(environ) == ["PORTAL_PORT", "PORTAL_SERVICE_HOST",
                                            "PORTAL_SERVICE_PORT"]


def test_pool_bounds_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=(
            r"storage \(from PORTAL_STORAGE__POOL_MAX, PORTAL_STORAGE__POOL_MIN\): "
            r"pool_min \(5\) is above pool_max \(2\)$")):
        load_settings(environ={"PORTAL_STORAGE__POOL_MIN": "5", "PORTAL_STORAGE__POOL_MAX": "2"})


def test_https_base_url_forces_secure_cookies(tmp_path: Path) -> None:
    plain = load_settings(environ={"PORTAL_DATA_DIR": str(tmp_path)})
    assert plain.secure_cookies is False
    https = load_settings(environ={"PORTAL_BASE_URL": "https://portal.example"})
    assert https.secure_cookies is True
