"""Settings come from MADOGUCHI_* variables and a TOML file; bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings


def test_defaults_bind_loopback_and_use_sqlite_in_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MADOGUCHI_CONFIG", raising=False)
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.ice_addresses == ["127.0.0.1"]
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.outbox_enabled


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MADOGUCHI_PORT", "eighty", "MADOGUCHI_PORT"),
        ("MADOGUCHI_PORT", "70000", "MADOGUCHI_PORT"),
        ("MADOGUCHI_ICE_ADDRESSES", "127.0.0.1,not-an-ip", "MADOGUCHI_ICE_ADDRESSES"),
        ("MADOGUCHI_LOG_LEVEL", "LOUD", "MADOGUCHI_LOG_LEVEL"),
        ("MADOGUCHI_PUBLIC_URL", "city.example", "MADOGUCHI_PUBLIC_URL"),
        ("MADOGUCHI_SMTP_SECURITY", "maybe", "MADOGUCHI_SMTP_SECURITY"),
    ],
)
def test_wrong_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_comma_separated_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_ICE_ADDRESSES", "127.0.0.1, 192.0.2.10")
    assert load_settings().ice_addresses == ["127.0.0.1", "192.0.2.10"]


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "madoguchi.toml"
    config.write_text('port = 9000\nlog_level = "DEBUG"\nice_addresses = ["127.0.0.2"]\n')
    monkeypatch.setenv("MADOGUCHI_CONFIG", str(config))
    monkeypatch.setenv("MADOGUCHI_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.ice_addresses == ["127.0.0.2"]
    assert settings.log_level == "WARNING"


def test_unknown_key_in_toml_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "madoguchi.toml"
    config.write_text("prot = 9000\n")
    monkeypatch.setenv("MADOGUCHI_CONFIG", str(config))
    with pytest.raises(SettingsError, match="MADOGUCHI_PROT: unknown setting"):
        load_settings()


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_CONFIG", "/nonexistent/madoguchi.toml")
    with pytest.raises(SettingsError, match="no such file"):
        load_settings()


def test_tls_cert_without_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_TLS_CERT", "/tmp/cert.pem")
    with pytest.raises(SettingsError, match="tls_key"):
        load_settings()
