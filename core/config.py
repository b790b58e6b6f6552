"""One settings object for every process, loaded from the environment in one place.

`load_settings()` is the only reader of os.environ. Runtime overrides written by
admins live in the settings table (core.settings_store) and are overlaid by
`core.settings_store.effective_config`.

`python -m core.config` prints the effective configuration with secrets redacted
and exits 2 on an invalid value, naming the variable, the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_LOCALNET_PORT = 8899


class TokenProgram(StrEnum):
    SPL_TOKEN = "spl-token"
    TOKEN_2022 = "token-2022"


class MintMode(StrEnum):
    SPL = "spl"
    ANCHOR = "anchor"


class AuthoritySigner(StrEnum):
    FILE = "file"
    VAULT_TRANSIT = "vault-transit"


class TokenizationConfig(BaseSettings):
    """The tokenization rules. Admins may override every field but `decimals` at run time."""

    model_config = SettingsConfigDict(env_prefix="TOKENIZATION_", frozen=True, extra="ignore")

    kwh_to_token_ratio: Decimal = Field(Decimal("1.0"), gt=0, le=1000, decimal_places=9)
    decimals: int = Field(9, ge=0, le=9)
    auto_mint_enabled: bool = True
    polling_interval_secs: int = Field(60, ge=1, le=86_400)
    batch_size: int = Field(50, ge=1, le=1000)
    max_reading_kwh: Decimal = Field(Decimal("100.0"), gt=0, le=100_000, decimal_places=6)
    reading_max_age_days: int = Field(7, ge=1, le=3650)
    duplicate_window_secs: int = Field(900, ge=0, le=86_400)
    max_clock_skew_secs: int = Field(60, ge=0, le=3600)
    max_retries: int = Field(3, ge=0, le=100)
    retry_base_secs: int = Field(30, ge=1, le=86_400)
    review_threshold_kwh: Decimal | None = Field(Decimal("50"), gt=0, le=100_000, decimal_places=6)
    # Plausibility (core.readings.plausibility): the rated power assumed for a meter
    # that carries none, and how far back readings may mint without an admin.
    max_kw_per_meter: Decimal = Field(Decimal("50"), gt=0, le=100_000, decimal_places=6)
    max_backfill_hours: int = Field(48, ge=1, le=87_600)
    # Fill or wait: a transaction goes when full or when its oldest reading waited this long.
    max_mint_wait_secs: int = Field(60, ge=0, le=3600)
    priority_fee_microlamports: int = Field(0, ge=0, le=100_000_000)  # per compute unit
    fee_payer_min_sol: Decimal = Field(Decimal("1"), ge=0, le=1_000_000, decimal_places=9)
    create_token_accounts: bool = True
    # Telemetry (GridTokenX samples at any cadence) settles in epoch-aligned intervals;
    # one closes when a sample at or after its end arrives, or this grace after its end.
    settlement_interval_secs: int = Field(900, ge=60, le=86_400)
    settlement_grace_secs: int = Field(120, ge=0, le=86_400)
    # Not a setting: where `python -m core.archive` has removed readings up to (the end
    # of the last archived month), read from the database with the overrides. A reading
    # before it is refused whatever the age limit, since its stored twin, the one thing
    # that made a resend a duplicate, is gone (core.settings_store.ARCHIVED_BEFORE).
    _archived_before: datetime | None = PrivateAttr(default=None)

    @property
    def archived_before(self) -> datetime | None:
        return self._archived_before

    def with_archive_horizon(self, before: datetime | None) -> TokenizationConfig:
        """This configuration with the archive's horizon set (a copy; the model is frozen)."""
        copy = self.model_copy()
        copy._archived_before = before
        return copy

    @field_validator("review_threshold_kwh", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


# Fields of TokenizationConfig an admin may override at run time.
# Not the settlement interval: changing it under open intervals would re-cut them.
OVERRIDABLE_KEYS: tuple[str, ...] = tuple(
    name
    for name in TokenizationConfig.model_fields
    if name not in ("decimals", "settlement_interval_secs", "settlement_grace_secs")
)


class AppSettings(BaseSettings):
    """Everything else in CONTRACT's environment table."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = ""
    solana_rpc_url: str = ""
    solana_commitment: str = "confirmed"
    # Pubsub beside SOLANA_RPC_URL; unset: derived as web3.js does (port + 1); "off": poll only.
    solana_ws_url: str = ""
    localnet_port: int = Field(DEFAULT_LOCALNET_PORT, ge=1, le=65_535)
    # Slot time of the embedded node; a blockhash lives 150 slots. Tests shorten it.
    localnet_slot_ms: int = Field(400, ge=5, le=10_000)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65_535)
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8501, ge=1, le=65_535)
    api_secret_key: str = ""
    admin_username: str = Field("admin", min_length=1, max_length=64)
    admin_password: str = ""
    authority_keypair_path: Path | None = None
    # Signing (docs/OPERATIONS.md "Signing through OpenBao / Vault transit").
    authority_signer: AuthoritySigner = AuthoritySigner.FILE
    fee_payer_keypair_path: Path | None = None
    vault_addr: str = Field("", validate_default=True)
    vault_token: str = ""
    vault_role_id: str = ""
    vault_secret_id: str = Field("", validate_default=True)
    vault_transit_mount: str = Field("transit", min_length=1, pattern=r"^[A-Za-z0-9_./-]+$")
    vault_transit_key: str = Field("", validate_default=True, pattern=r"^[A-Za-z0-9_.-]*$")
    vault_transit_key_version: int | None = Field(None, ge=1)
    vault_cacert: Path | None = None
    energy_token_mint: str = ""
    token_program: TokenProgram = TokenProgram.SPL_TOKEN
    mint_mode: MintMode = MintMode.SPL
    gridtokenx_program_id: str = Field("", validate_default=True)
    gridtokenx_idl_path: Path | None = Field(None, validate_default=True)
    demo: bool = False
    # A meter's reading budget (core/readings/budget.py): readings, not requests.
    meter_rate_limit_per_minute: int = Field(120, ge=1, le=100_000)
    meter_rate_limit_burst: int = Field(1000, ge=1, le=1_000_000)
    # Closed hours' minted energy becomes certificates at once; false: each waits for an admin.
    certificates_auto_issue: bool = True
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # Serving limits of the API and the dashboard (serving/, docs/OPERATIONS.md).
    http_header_timeout_secs: float = Field(10.0, gt=0, le=600)
    http_keep_alive_secs: int = Field(5, ge=1, le=3600)
    http_max_connections: int = Field(0, ge=0, le=1_000_000)  # 0: from the open-file limit
    http_max_in_flight: int = Field(1024, ge=1, le=100_000)
    http_max_websockets: int = Field(2000, ge=1, le=100_000)
    # Proxies whose X-Forwarded-For is believed: addresses or networks, "*" for any.
    forwarded_allow_ips: str = ""
    # The MQTT ingest bridge (docs/API.md "MQTT"). Unset MQTT_URL: the embedded broker that
    # `make run` starts on MQTT_PORT; mqtt://user:password@host:port, mqtts:// for TLS.
    mqtt_url: str = ""
    mqtt_port: int = Field(1883, ge=1, le=65_535)
    mqtt_client_id: str = Field("gridtokenx-ingest", min_length=1, max_length=64)
    # 5 (retain-as-published, receive maximum) or 3.1.1 (the embedded broker speaks only it).
    mqtt_protocol: str = Field("5", pattern=r"^(5|3\.1\.1)$")
    mqtt_cafile: Path | None = None  # mqtts:// with a private CA; unset: the system's CAs
    # Prepended to every topic, so deployments (or test runs) can share one broker.
    mqtt_topic_prefix: str = Field("", max_length=64, pattern=r"^[^+#]*$")
    # Several bridges share the readings through an MQTT shared subscription
    # ($share/<group>/...): each message goes to one of them. Empty: a plain subscription.
    mqtt_share_group: str = Field("", max_length=64, pattern=r"^[^+#/$]*$")
    # Bridge processes `make run` starts (on a broker of MQTT_URL; the embedded one: 1).
    mqtt_bridges: int = Field(1, ge=1, le=16)
    # Login sessions (core.sessions): the absolute lifetime of every login, and how
    # long a dashboard login may sit unused before it ends.
    session_max_hours: int = Field(8, ge=1, le=720)
    session_idle_minutes: int = Field(30, ge=1, le=1440)

    @field_validator("solana_commitment")
    @classmethod
    def _known_commitment(cls, value: str) -> str:
        if value not in ("processed", "confirmed", "finalized"):
            raise ValueError("must be one of processed, confirmed, finalized")
        return value

    @field_validator("database_url")
    @classmethod
    def _parsable_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(
                "must be a URL such as sqlite:///data/gridtokenx.db or "
                "postgresql+psycopg://user@host:5432/db"
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("must name sqlite or postgresql (postgresql+psycopg://...)")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
            raise ValueError("PostgreSQL is reached through psycopg 3: postgresql+psycopg://...")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for entry in (entry.strip() for entry in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise ValueError(
                        f"{entry!r} is not an IP address or network; "
                        "give addresses or networks, comma-separated, or *"
                    ) from exc
        return value

    @field_validator("solana_rpc_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// JSON-RPC endpoint")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtt://[user:password@]host[:port] or mqtts://...")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError("the port must be a number from 1 to 65535") from exc
        return value

    @field_validator("solana_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if value and value != "off" and not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// pubsub endpoint, or off")
        return value

    @field_validator("vault_addr")
    @classmethod
    def _transit_needs_addr(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("authority_signer") is AuthoritySigner.VAULT_TRANSIT and not value:
            raise ValueError(
                "AUTHORITY_SIGNER=vault-transit requires VAULT_ADDR (https://host:8200)"
            )
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address of OpenBao / Vault")
        return value

    @field_validator("vault_secret_id")
    @classmethod
    def _transit_needs_credentials(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("authority_signer") is not AuthoritySigner.VAULT_TRANSIT:
            return value
        role_id = info.data.get("vault_role_id")
        if bool(role_id) != bool(value):
            raise ValueError("AppRole login needs both VAULT_ROLE_ID and VAULT_SECRET_ID")
        if not role_id and not info.data.get("vault_token"):
            raise ValueError(
                "AUTHORITY_SIGNER=vault-transit requires VAULT_TOKEN, or VAULT_ROLE_ID and "
                "VAULT_SECRET_ID for an AppRole login"
            )
        return value

    @field_validator("vault_transit_key")
    @classmethod
    def _transit_needs_key(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("authority_signer") is AuthoritySigner.VAULT_TRANSIT and not value:
            raise ValueError(
                "AUTHORITY_SIGNER=vault-transit requires VAULT_TRANSIT_KEY (an ed25519 transit key)"
            )
        return value

    @field_validator("gridtokenx_program_id")
    @classmethod
    def _anchor_needs_program(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mint_mode") is MintMode.ANCHOR and not value:
            raise ValueError("MINT_MODE=anchor requires GRIDTOKENX_PROGRAM_ID (base58 program id)")
        return value

    @field_validator("gridtokenx_idl_path")
    @classmethod
    def _anchor_needs_idl(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if info.data.get("mint_mode") is MintMode.ANCHOR and value is None:
            raise ValueError("MINT_MODE=anchor requires GRIDTOKENX_IDL_PATH (the program's IDL)")
        return value

    # Derived values: defaults that depend on other variables.

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gridtokenx.db').as_posix()}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is one (not PostgreSQL, not :memory:)."""
        url = make_url(self.effective_database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    @property
    def localnet_url(self) -> str:
        return f"http://127.0.0.1:{self.localnet_port}"

    @property
    def effective_rpc_url(self) -> str:
        return self.solana_rpc_url or self.localnet_url

    @property
    def effective_ws_url(self) -> str | None:
        """Where the cluster's pubsub is (None: SOLANA_WS_URL=off, confirmations by polling)."""
        if self.solana_ws_url == "off":
            return None
        if self.solana_ws_url:
            return self.solana_ws_url
        return _websocket_url_for(self.effective_rpc_url)

    @property
    def uses_embedded_localnet(self) -> bool:
        """True when the RPC endpoint is the embedded node this project starts itself."""
        return self.effective_rpc_url.rstrip("/") in (
            self.localnet_url,
            f"http://localhost:{self.localnet_port}",
        )

    @property
    def effective_mqtt_url(self) -> str:
        return self.mqtt_url or f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def effective_authority_keypair_path(self) -> Path:
        return self.authority_keypair_path or self.keys_dir / "authority.json"


class Settings:
    """The loaded configuration: the app settings plus the tokenization rules from the env."""

    def __init__(self, app: AppSettings, tokenization: TokenizationConfig) -> None:
        self.app = app
        self.tokenization = tokenization

    def __repr__(self) -> str:
        return f"Settings(app={self.app!r}, tokenization={self.tokenization!r})"


class ConfigError(Exception):
    """An invalid environment value; `problems` holds (variable, value, what is allowed)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{var}={value!r}: {allowed}" for var, value, allowed in problems)
        )


def _problems(
    exc: ValidationError, prefix: str, env: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = (prefix + field).upper() if field else prefix.rstrip("_") or "configuration"
        value = env.get(variable, env.get(variable.lower(), str(error.get("input", ""))))
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append((variable, value, message))
    return problems


def load_settings() -> Settings:
    """Read the environment once; raise ConfigError listing every invalid variable.

    `.env` files are not read: the process environment is the single source of truth.
    """
    import os

    problems: list[tuple[str, str, str]] = []
    app = tokenization = None
    try:
        app = AppSettings()
    except ValidationError as exc:
        problems += _problems(exc, "", os.environ)
    try:
        tokenization = TokenizationConfig()
    except ValidationError as exc:
        problems += _problems(exc, "TOKENIZATION_", os.environ)
    if problems or app is None or tokenization is None:
        raise ConfigError(problems)
    return Settings(app, tokenization)


SECRET_FIELDS = ("api_secret_key", "admin_password")
SUPPLIED_SECRETS = ("vault_token", "vault_secret_id")  # never generated: shown only as set/unset


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redacted(settings: Settings) -> dict[str, Any]:
    """The configuration as printable values: secrets replaced, passwords stripped from URLs."""
    app = settings.app.model_dump(mode="json")
    for name in SECRET_FIELDS:
        app[name] = "<redacted>" if app[name] else "<generated into DATA_DIR>"
    for name in SUPPLIED_SECRETS:
        app[name] = "<redacted>" if app[name] else ""
    app["database_url"] = make_url(settings.app.effective_database_url).render_as_string(
        hide_password=True
    )
    app["solana_rpc_url"] = settings.app.effective_rpc_url
    app["mqtt_url"] = _without_password(settings.app.effective_mqtt_url)
    app["authority_keypair_path"] = str(settings.app.effective_authority_keypair_path)
    tokenization = settings.tokenization.model_dump(mode="json")
    return {
        **{name.upper(): value for name, value in app.items()},
        **{f"TOKENIZATION_{name.upper()}": value for name, value in tokenization.items()},
    }


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print("Invalid configuration:", file=sys.stderr)
        for variable, value, allowed in exc.problems:
            shown = repr(value) if value not in ("", "None") else "(unset)"
            print(f"  {variable}={shown}: {allowed}", file=sys.stderr)
        print("Fix the variable(s) above (see docs/CONFIGURATION.md).", file=sys.stderr)
        return 2
    width = max(len(key) for key in redacted(settings))
    for key, value in redacted(settings).items():
        print(f"{key.ljust(width)}  {'' if value is None else value}")
    overrides = _overrides_note(settings)
    if overrides:
        print(overrides)
    return 0


def _overrides_note(settings: Settings) -> str:
    """Runtime overrides from the database, when it exists and is migrated."""
    url = make_url(settings.app.effective_database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return "# runtime overrides: none (the database does not exist yet)"
    try:
        from core.db.engine import create_db_engine
        from core.db.migrate import ensure_migrated
        from core.settings_store import effective_config, read_overrides

        engine = create_db_engine(settings.app.effective_database_url)
        try:
            ensure_migrated(engine)
            overrides = read_overrides(engine)
            horizon = effective_config(engine, settings.tokenization).archived_before
        finally:
            engine.dispose()
    except Exception as exc:  # the environment is still worth printing
        return f"# runtime overrides not read: {exc}"
    lines = (
        ["# runtime overrides from the database (they win over the environment):"]
        if overrides
        else ["# runtime overrides: none"]
    )
    lines += [f"TOKENIZATION_{key.upper()}  {value}" for key, value in overrides.items()]
    if horizon is not None:
        lines.append(
            f"# archived by python -m core.archive: readings before {horizon.isoformat()} "
            "are refused"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())


def _websocket_url_for(rpc_url: str) -> str:
    """The pubsub URL a cluster serves beside `rpc_url`, derived as web3.js derives it:
    ws for http, wss for https, and the port + 1 when the URL names a port."""
    parts = urlsplit(rpc_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    netloc = host if parts.port is None else f"{host}:{parts.port + 1}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))
