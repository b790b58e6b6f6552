"""schemathesis over the API's OpenAPI, as every role: no 5xx, no response outside its schema.

Each operation is fuzzed with a few derandomized examples (same cases every run) and
each case is sent five times: as an admin, an operator, a prosumer, a meter key and
without credentials. Bounded: SCHEMATHESIS_MAX_EXAMPLES per operation and mode (default 8),
the whole module well under a minute per database on two cores.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import FailureGroup, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from starlette.testclient import TestClient

from api.app import create_app
from core.bootstrap import bootstrap
from core.config import load_settings
from core.db.models import Role, SessionKind
from core.sessions import SessionPolicy, start_session
from tests.api.conftest import WallClock
from tests.conftest import _APP_VARIABLES
from tests.factories import DEFAULT_PASSWORD, NOW, make_meter, make_user
from tests.pages.seed import BACKENDS, shared_database

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
ROLES = ("admin", "operator", "prosumer", "meter", "nobody")


@dataclass
class World:
    schema: schemathesis.BaseSchema
    headers: dict[str, dict[str, str]]
    # Logs a role in again (a fuzzed POST /api/auth/logout ends its session).
    log_in: Callable[[str], dict[str, str]]
    # (role, status) -> responses seen: proof that each role's credentials were used.
    seen: Counter = field(default_factory=Counter)


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    with shared_database(request, directory) as url, pytest.MonkeyPatch.context() as env:
        for variable in [v for v in os.environ if v.startswith("TOKENIZATION_")]:
            env.delenv(variable)
        for variable in _APP_VARIABLES & set(os.environ):
            env.delenv(variable)
        env.setenv("DATABASE_URL", url)
        env.setenv("DATA_DIR", str(directory / "data"))
        env.setenv("SOLANA_RPC_URL", "http://127.0.0.1:9")  # nothing listens: chain reads fail
        core = bootstrap(load_settings())
        with core.sessions() as session:
            users = {
                "admin": make_user(session, "root", role=Role.ADMIN),
                "operator": make_user(session, "op", role=Role.OPERATOR),
                "prosumer": make_user(session, "alice", role=Role.PROSUMER),
            }
            meter = make_meter(session, users["prosumer"], serial="MTR-FUZZ")
        api = create_app(core, clock=WallClock(), config_ttl_secs=0, create_first_admin=False)
        with TestClient(api, client=("127.0.0.1", 50000)) as client:

            def log_in(role: str) -> dict[str, str]:
                # A session as the login route starts it, without spending the login
                # throttle that the fuzzed login attempts use up.
                with core.sessions() as session:
                    token = start_session(
                        session,
                        users[role],
                        core.api_secret_key(),
                        kind=SessionKind.API,
                        policy=SessionPolicy(),
                        now=NOW,
                    )
                return {"Authorization": f"Bearer {token.access_token}"}

            headers: dict[str, dict[str, str]] = {"meter": {"X-API-Key": meter.api_key}}
            for role, user in users.items():
                login = client.post(
                    "/api/auth/login",
                    json={"username": user.username, "password": DEFAULT_PASSWORD},
                )
                assert login.status_code == 200, login.text
                headers[role] = {"Authorization": f"Bearer {login.json()['access_token']}"}
            headers["nobody"] = {}
            yield World(schemathesis.openapi.from_asgi("/openapi.json", api), headers, log_in)
        core.close()


def _fuzz(world: World, operation, mode: GenerationMode) -> str | None:
    """Run one operation's examples in one mode; the first failure's report, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case) -> None:
        for role in ROLES:
            try:
                response = case.call_and_validate(headers=world.headers[role], checks=CHECKS)
                world.seen[role, response.status_code] += 1
                if operation.path == "/api/auth/logout" and response.status_code == 204:
                    world.headers[role] = world.log_in(role)  # that session has ended
            except (AssertionError, FailureGroup) as failure:
                raise AssertionError(f"as {role}: {failure}") from failure

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to make invalid (an operation without parameters)
    except (Exception, FailureGroup) as failure:  # a failed check, or the app raised
        return f"{operation.label} ({mode.value}): {type(failure).__name__}: {failure}"
    return None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_5xx_and_no_schema_violation_for_any_role(world: World) -> None:
    operations = [result.ok() for result in world.schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not an empty schema
    failures = [
        report
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (report := _fuzz(world, operation, mode)) is not None
    ]
    assert not failures, "\n\n".join(failures)
    ok = {
        role: sum(n for (r, status), n in world.seen.items() if r == role and status < 300)
        for role in ROLES
    }
    assert all(ok[role] > 0 for role in ("admin", "operator", "prosumer", "meter")), world.seen
    assert world.seen["nobody", 401] > 0, world.seen
