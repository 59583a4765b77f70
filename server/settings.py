"""Settings: one typed object from MADOGUCHI_* environment variables and an optional TOML file."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "MADOGUCHI_"
CONFIG_FILE_VAR = "MADOGUCHI_CONFIG"


class SettingsError(Exception):
    """A configuration value is wrong; the message names the variable."""


# comma-separated in the environment ("127.0.0.1,192.0.2.10"), a list in TOML
AddressList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything Madoguchi reads from its environment; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""
    data_dir: Path = Path("data")
    database_url: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    templates_dir: Path = Path("consult_templates")

    # media
    ice_addresses: AddressList = ["127.0.0.1"]
    ice_announced_addresses: AddressList = []
    udp_port_min: int = Field(40000, ge=1024, le=65535)
    udp_port_max: int = Field(49999, ge=1024, le=65535)
    turn_urls: AddressList = []
    turn_secret: str = ""

    # mail
    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = "madoguchi@localhost"
    # reminders before a consultation starts, in minutes (empty: none)
    reminder_minutes_before: Annotated[list[int], NoDecode] = [24 * 60]

    # TLS for LAN use: browsers allow camera and microphone only in a secure context
    tls_cert: Path | None = None
    tls_key: Path | None = None

    # security
    # how long before the start participants may enter (hosts with `admit` may come any time)
    early_join_minutes: int = Field(30, ge=0, le=24 * 60)
    session_max_age: int = Field(8 * 3600, ge=60)
    login_attempts_per_minute: int = Field(10, ge=1)
    secure_cookies: bool = False

    @field_validator("reminder_minutes_before")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(minutes <= 0 for minutes in value):
            raise ValueError("every reminder must be a positive number of minutes")
        return value

    @field_validator(
        "ice_addresses",
        "ice_announced_addresses",
        "turn_urls",
        "reminder_minutes_before",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ice_addresses", "ice_announced_addresses")
    @classmethod
    def _ip_list(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_address(item)
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.udp_port_min > self.udp_port_max:
            raise ValueError("udp_port_min must not exceed udp_port_max")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_FILE_VAR)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'madoguchi.sqlite3').resolve()}"

    @property
    def base_url(self) -> str:
        """The URL people are sent in links."""
        if self.public_url:
            return self.public_url
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def reminders(self) -> tuple[dt.timedelta, ...]:
        """How long before the start each reminder mail goes out."""
        return tuple(dt.timedelta(minutes=m) for m in self.reminder_minutes_before)

    @property
    def outbox_enabled(self) -> bool:
        """Without SMTP settings, mail goes to the local outbox at /outbox."""
        return not self.smtp_host


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one message naming each variable."""
    path = os.environ.get(CONFIG_FILE_VAR)
    if path and not Path(path).is_file():
        raise SettingsError(f"{CONFIG_FILE_VAR}: no such file: {path}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except ValueError as exc:  # e.g. a TOML syntax error in the config file
        raise SettingsError(f"{CONFIG_FILE_VAR} ({path}): {exc}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = ENV_PREFIX + field.upper()
        if err["type"] == "extra_forbidden":
            lines.append(f"{name}: unknown setting (see docs/configuration.md)")
        else:
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
