"""Configuration: defaults, validation with exit code 2, redaction, runtime overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import ConfigError
from core.db.models import Event, Setting
from core.settings_store import (
    ARCHIVED_BEFORE,
    InvalidSetting,
    effective_config,
    raise_archive_horizon,
    read_overrides,
    reset_settings,
    update_settings,
)

REPO = Path(__file__).resolve().parents[2]


def run_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOKENIZATION_")}
    clean.update({"DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "core.config"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_match_the_contract(make_settings) -> None:
    settings = make_settings()
    t = settings.tokenization
    assert (t.kwh_to_token_ratio, t.decimals, t.auto_mint_enabled) == (Decimal("1.0"), 9, True)
    assert (t.polling_interval_secs, t.batch_size, t.max_reading_kwh) == (60, 50, Decimal(100))
    assert (t.reading_max_age_days, t.duplicate_window_secs, t.max_clock_skew_secs) == (7, 900, 60)
    assert (t.max_retries, t.retry_base_secs, t.review_threshold_kwh) == (3, 30, Decimal(50))
    assert (t.max_kw_per_meter, t.max_backfill_hours) == (Decimal(50), 48)
    app = settings.app
    assert app.effective_rpc_url == "http://127.0.0.1:8899"
    assert app.uses_embedded_localnet
    assert app.effective_database_url.endswith("/data/gridtokenx.db")
    assert app.effective_authority_keypair_path == app.data_dir / "keys" / "authority.json"
    assert (app.api_host, app.api_port, app.meter_rate_limit_per_minute) == ("127.0.0.1", 8000, 120)


def test_rpc_url_follows_the_localnet_port_and_a_remote_cluster_is_not_embedded(
    make_settings,
) -> None:
    assert make_settings(LOCALNET_PORT="9900").app.effective_rpc_url == "http://127.0.0.1:9900"
    remote = make_settings(SOLANA_RPC_URL="https://api.devnet.solana.com")
    assert not remote.app.uses_embedded_localnet


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("TOKENIZATION_KWH_TO_TOKEN_RATIO", "0", "greater than 0"),
        ("TOKENIZATION_KWH_TO_TOKEN_RATIO", "-1.5", "greater than 0"),
        ("TOKENIZATION_DECIMALS", "10", "less than or equal to 9"),
        ("TOKENIZATION_DECIMALS", "-1", "greater than or equal to 0"),
        ("TOKENIZATION_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("TOKENIZATION_BATCH_SIZE", "1001", "less than or equal to 1000"),
        ("TOKENIZATION_AUTO_MINT_ENABLED", "maybe", "boolean"),
        ("DATABASE_URL", "mysql://root@localhost/x", "sqlite or postgresql"),
        ("DATABASE_URL", "not a url", "must be a URL"),
        ("DATABASE_URL", "postgresql+psycopg2://u@h/db", "psycopg 3"),
        ("SOLANA_COMMITMENT", "instant", "processed, confirmed, finalized"),
        ("TOKEN_PROGRAM", "token-3000", "spl-token"),
        ("SOLANA_RPC_URL", "ftp://x", "http"),
    ],
)
def test_invalid_values_name_the_variable_and_what_is_allowed(
    make_settings, variable: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(**{variable: value})
    [(name, shown, allowed)] = caught.value.problems
    assert (name, shown) == (variable, value)
    assert reason in allowed


def test_cli_prints_the_effective_config_with_secrets_redacted(tmp_path: Path) -> None:
    result = run_config(
        tmp_path,
        API_SECRET_KEY="s3cret-signing-key",
        ADMIN_PASSWORD="hunter2-admin",
        DATABASE_URL="postgresql+psycopg://gtx:pw-in-url@127.0.0.1:1/none",
        TOKENIZATION_KWH_TO_TOKEN_RATIO="2.5",
    )
    assert result.returncode == 0, result.stderr
    assert "TOKENIZATION_KWH_TO_TOKEN_RATIO" in result.stdout and "2.5" in result.stdout
    for secret in ("s3cret-signing-key", "hunter2-admin", "pw-in-url"):
        assert secret not in result.stdout + result.stderr
    assert "<redacted>" in result.stdout


def test_cli_exits_2_naming_variable_value_and_rule(tmp_path: Path) -> None:
    result = run_config(tmp_path, TOKENIZATION_KWH_TO_TOKEN_RATIO="0", TOKENIZATION_DECIMALS="12")
    assert result.returncode == 2
    assert "TOKENIZATION_KWH_TO_TOKEN_RATIO='0'" in result.stderr
    assert "TOKENIZATION_DECIMALS='12'" in result.stderr
    assert "greater than 0" in result.stderr
    assert result.stdout == ""


def test_cli_does_not_create_the_data_directory(tmp_path: Path) -> None:
    assert run_config(tmp_path).returncode == 0
    assert not (tmp_path / "data").exists()


def test_overrides_win_over_the_environment_and_are_audited(sessions, make_settings) -> None:
    base = make_settings(TOKENIZATION_BATCH_SIZE="40").tokenization
    with sessions() as session:
        update_settings(
            session, base, {"kwh_to_token_ratio": "2.5", "auto_mint_enabled": False}, by="root"
        )
    with sessions() as session:
        config = effective_config(session, base)
        assert config.kwh_to_token_ratio == Decimal("2.5")
        assert config.auto_mint_enabled is False
        assert config.batch_size == 40  # untouched keys keep the environment's value
        events = session.scalars(select(Event).order_by(Event.id)).all()
        assert [(e.type, e.payload["key"]) for e in events] == [
            ("settings_changed", "kwh_to_token_ratio"),
            ("settings_changed", "auto_mint_enabled"),
        ]
        assert events[0].payload == {
            "key": "kwh_to_token_ratio",
            "old": "1.0",
            "new": "2.5",
            "by": "root",
        }
        assert session.get(Setting, "auto_mint_enabled").updated_by == "root"


def test_an_unchanged_value_writes_no_event(sessions, make_settings) -> None:
    base = make_settings().tokenization
    with sessions() as session:
        update_settings(session, base, {"batch_size": 50}, by="root")
        assert session.scalars(select(Event)).all() == []


def test_invalid_override_is_refused_and_nothing_is_stored(sessions, make_settings) -> None:
    base = make_settings().tokenization
    with sessions() as session:
        with pytest.raises(InvalidSetting) as caught:
            update_settings(session, base, {"batch_size": 5000, "kwh_to_token_ratio": "3"}, by="x")
        assert caught.value.field == "batch_size"
        with pytest.raises(InvalidSetting):
            update_settings(session, base, {"decimals": 6}, by="x")
    with sessions() as session:
        assert session.scalars(select(Setting)).all() == []
        assert effective_config(session, base) == base


def test_reset_returns_to_the_environment_and_is_audited(sessions, make_settings) -> None:
    base = make_settings(TOKENIZATION_REVIEW_THRESHOLD_KWH="40").tokenization
    with sessions() as session:
        config = update_settings(
            session, base, {"batch_size": 7, "review_threshold_kwh": None}, by="a"
        )
        assert config.review_threshold_kwh is None  # "no review" overrides the environment
        config = reset_settings(session, base, ["batch_size", "review_threshold_kwh"], by="a")
    assert config == base
    with sessions() as session:
        assert session.scalars(select(Setting)).all() == []
        changes = [e.payload for e in session.scalars(select(Event).order_by(Event.id))]
        assert changes[-2:] == [
            {"key": "batch_size", "old": 7, "new": 50, "by": "a"},
            {"key": "review_threshold_kwh", "old": None, "new": "40", "by": "a"},
        ]


def test_effective_config_reads_through_an_engine_too(engine, sessions, make_settings) -> None:
    base = make_settings().tokenization
    with sessions() as session:
        update_settings(session, base, {"polling_interval_secs": 5}, by="a")
    assert effective_config(engine, base).polling_interval_secs == 5


def test_the_archive_horizon_only_moves_forward_and_is_no_admin_setting(
    sessions, make_settings
) -> None:
    base = make_settings().tokenization
    october, november = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    with sessions() as session:
        raise_archive_horizon(session, november, by="archive")
        raise_archive_horizon(session, october, by="archive")  # an older month: no change
        session.commit()
    with sessions() as session:
        assert effective_config(session, base).archived_before == november
        assert read_overrides(session) == {}  # not an override: not shown, not printed
        config = update_settings(session, base, {"batch_size": 9}, by="a")
        assert (config.batch_size, config.archived_before) == (9, november)
        for change in (
            lambda: update_settings(session, base, {ARCHIVED_BEFORE: "2020-01-01"}, by="a"),
            lambda: reset_settings(session, base, [ARCHIVED_BEFORE], by="a"),
        ):
            with pytest.raises(InvalidSetting, match="not a runtime setting"):
                change()
    with sessions() as session:
        assert effective_config(session, base).archived_before == november
        assert session.get(Setting, ARCHIVED_BEFORE).value == "2026-11-01T00:00:00+00:00"
