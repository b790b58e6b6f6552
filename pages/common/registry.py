"""Which pages exist and who may open them: read by app.py (navigation) and by each
page's own guard, so the rule holds however a page is reached."""

from __future__ import annotations

from dataclasses import dataclass

from core.db.models import Role

STAFF = frozenset({Role.ADMIN, Role.OPERATOR})
ADMINS = frozenset({Role.ADMIN})
PROSUMERS = frozenset({Role.PROSUMER})
EVERYONE = frozenset(Role)


@dataclass(frozen=True)
class PageSpec:
    url_path: str
    title: str
    icon: str
    section: str
    roles: frozenset[Role]

    @property
    def path(self) -> str:
        return f"pages/screens/{self.url_path}.py"


PAGES = (
    PageSpec("overview", "Overview", ":material/dashboard:", "Operations", STAFF),
    PageSpec("live", "Live readings", ":material/monitoring:", "Operations", EVERYONE),
    PageSpec("fleet", "Fleet health", ":material/sensors:", "Operations", STAFF),
    PageSpec("minting", "Minting", ":material/toll:", "Operations", STAFF),
    PageSpec("events", "Events", ":material/list_alt:", "Operations", EVERYONE),
    PageSpec("certificates", "Certificates", ":material/verified:", "Operations", EVERYONE),
    PageSpec("control", "Control", ":material/tune:", "Administration", ADMINS),
    PageSpec("review", "Review queue", ":material/fact_check:", "Administration", ADMINS),
    PageSpec("admin", "Meters & users", ":material/group:", "Administration", ADMINS),
    PageSpec("wallet", "My wallet", ":material/account_balance_wallet:", "Account", PROSUMERS),
)
BY_URL = {spec.url_path: spec for spec in PAGES}


def default_page(role: Role) -> str:
    return "overview" if role in STAFF else "wallet"
