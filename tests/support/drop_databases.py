"""Drop the test databases named on the command line (after a test session, detached).

`python -m tests.support.drop_databases ADMIN_URL NAME...`: each drop forces a
PostgreSQL checkpoint, so the test session leaves them to this process instead of
paying for them while its tests run.
"""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text


def main(admin_url: str, names: list[str]) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
