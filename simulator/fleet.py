"""The demo fleet: who and what it is, and making it exist through the admin API.

State lives under DATA_DIR/simulator/ (0600 files): the demo users' passwords and
wallets, and per meter its ed25519 key and API key, so a restarted simulator
reuses its meters instead of registering new ones. The demo logins (admin,
operator, prosumers) are written once to DATA_DIR/demo-logins.txt (0600).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

from core.secrets import write_private_file
from simulator.client import ApiClient, ApiError
from simulator.energy import Site

log = logging.getLogger("simulator")


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str


@dataclass(frozen=True)
class PlannedMeter:
    serial: str
    owner: str
    site: Site


DEMO_USERS = (
    DemoUser("operator", "operator"),
    DemoUser("alice", "prosumer"),
    DemoUser("bob", "prosumer"),
)
# Four sites a few time zones apart: at any hour of the day one of them has sun.
DEMO_METERS = (
    PlannedMeter("SIM-ALICE-CNX", "alice", Site("Chiang Mai", 7, 5.0)),
    PlannedMeter("SIM-ALICE-LIS", "alice", Site("Lisbon", 0, 3.5)),
    PlannedMeter("SIM-BOB-NYC", "bob", Site("New York", -5, 4.0)),
    PlannedMeter("SIM-BOB-HNL", "bob", Site("Honolulu", -10, 6.0)),
)

# What a certificate registry knows of each demo device (docs/CERTIFICATES.md).
DEMO_DEVICES = {
    "SIM-ALICE-CNX": ("TH", "TH-PEA", "18.788300", "98.985300"),
    "SIM-ALICE-LIS": ("PT", "PT", "38.722300", "-9.139300"),
    "SIM-BOB-NYC": ("US", "US-NYISO", "40.712800", "-74.006000"),
    "SIM-BOB-HNL": ("US", "US-HI", "21.306900", "-157.858300"),
}


def device_fields(plan: PlannedMeter) -> dict[str, str]:
    country, region, latitude, longitude = DEMO_DEVICES[plan.serial]
    return {
        "technology": "solar_pv",
        "capacity_kw": f"{plan.site.peak_kw:.3f}",
        "country": country,
        "grid_region": region,
        "latitude": latitude,
        "longitude": longitude,
        "commissioning_date": "2024-01-15",
    }


@dataclass
class FleetMeter:
    plan: PlannedMeter
    keypair: Keypair
    api_key: str

    @property
    def serial(self) -> str:
        return self.plan.serial


def write_private_json(path: Path, data: Any) -> None:
    """Replace `path` atomically with a 0600 file (keys and passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


class FleetStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "simulator"
        self.users_file = self.root / "users.json"
        self.logins_file = data_dir / "demo-logins.txt"

    def users(self) -> dict[str, dict[str, Any]]:
        """The demo users' passwords and wallets, generated once."""
        users = _read_json(self.users_file) or {}
        changed = False
        for user in DEMO_USERS:
            if user.username in users:
                continue
            entry: dict[str, Any] = {"role": user.role, "password": secrets.token_urlsafe(12)}
            if user.role == "prosumer":
                # Only the address is needed: tokens go to its associated token account.
                entry["wallet"] = str(Keypair().pubkey())
            users[user.username] = entry
            changed = True
        if changed:
            write_private_json(self.users_file, users)
        return users

    def meter_file(self, serial: str) -> Path:
        return self.root / "meters" / f"{serial}.json"

    def load_meter(self, plan: PlannedMeter) -> tuple[Keypair, str | None]:
        saved = _read_json(self.meter_file(plan.serial))
        if saved is None:
            keypair = Keypair()
            self.save_meter(plan, keypair, None)
            return keypair, None
        return Keypair.from_bytes(bytes(saved["secret_key"])), saved.get("api_key")

    def save_meter(self, plan: PlannedMeter, keypair: Keypair, api_key: str | None) -> None:
        write_private_json(
            self.meter_file(plan.serial),
            {
                "serial": plan.serial,
                "owner": plan.owner,
                "public_key": str(keypair.pubkey()),
                "api_key": api_key,
                # Solana CLI keypair format: the 64 bytes as a JSON array.
                "secret_key": list(bytes(keypair)),
            },
        )

    def write_logins(self, admin: tuple[str, str], users: dict[str, dict[str, Any]]) -> bool:
        """Write DATA_DIR/demo-logins.txt once; False when it exists already."""
        if self.logins_file.exists():
            return False
        lines = [
            "# GridTokenX demo logins (written by the simulator; keep this file private)",
            f"{'role':<10}{'username':<12}{'password':<22}wallet",
            f"{'admin':<10}{admin[0]:<12}{admin[1]:<22}",
        ]
        for username, entry in users.items():
            lines.append(
                f"{entry['role']:<10}{username:<12}{entry['password']:<22}{entry.get('wallet', '')}"
            )
        try:
            write_private_file(self.logins_file, "\n".join(line.rstrip() for line in lines) + "\n")
        except FileExistsError:
            return False
        return True


def logins_notice(path: Path) -> str:
    """What the console says about the demo logins: where they are, not what they are
    (a terminal's scrollback and a supervisor's log keep what is printed)."""
    return (
        f"demo logins (usernames, passwords, wallets) saved 0600 in {path}; "
        f"read them there (cat {path}), they are printed nowhere"
    )


def ensure_users(client: ApiClient, users: dict[str, dict[str, Any]]) -> None:
    for username, entry in users.items():
        try:
            client.create_user(username, entry["password"], entry["role"], entry.get("wallet"))
            log.info("created demo user %s (%s)", username, entry["role"])
        except ApiError as exc:
            if exc.code != "username_taken":
                raise


def ensure_meters(client: ApiClient, store: FleetStore) -> list[FleetMeter]:
    """Register the planned meters, or reuse them; returns those able to submit."""
    registered = client.meters()
    fleet = []
    for plan in DEMO_METERS:
        keypair, api_key = store.load_meter(plan)
        existing = registered.get(plan.serial)
        if existing is None:
            api_key = client.register_meter(
                plan.serial, plan.owner, str(keypair.pubkey()), device_fields(plan)
            )
            store.save_meter(plan, keypair, api_key)
            log.info("registered demo meter %s (%s)", plan.serial, plan.site.name)
        elif existing["public_key"] != str(keypair.pubkey()):
            log.error("meter %s exists with another public key; skipping it", plan.serial)
            continue
        elif existing["status"] != "active":
            log.warning("meter %s is %s; not simulating it", plan.serial, existing["status"])
            continue
        elif not api_key:
            api_key = client.rotate_key(plan.serial)
            store.save_meter(plan, keypair, api_key)
        assert api_key is not None
        fleet.append(FleetMeter(plan, keypair, api_key))
    return fleet


def renew_key(client: ApiClient, store: FleetStore, meter: FleetMeter) -> None:
    """The API no longer knows the saved key (a reset database?): issue a new one."""
    meter.api_key = client.rotate_key(meter.serial)
    store.save_meter(meter.plan, meter.keypair, meter.api_key)
