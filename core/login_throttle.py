"""The login throttle the API and the dashboard share: per client and per username.

Per client (LOGIN_ATTEMPTS_PER_CLIENT a minute) stops one address from guessing
fast; per username (LOGIN_ATTEMPTS_PER_USERNAME a minute) stops many addresses
guessing one account's password. Every attempt costs a token in both buckets,
checked before the password is: a refused attempt costs no argon2 time and
reveals nothing. The client is the address from serving.client_address, which
believes X-Forwarded-For only from FORWARDED_ALLOW_IPS.

The buckets live in each process (core.ratelimit): the API and the dashboard each
enforce the limits, so one account can be tried at most twice the per-username
rate across both, which still bounds a guesser to a few hundred attempts an hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.ratelimit import TokenBuckets

LOGIN_ATTEMPTS_PER_CLIENT = 30
LOGIN_ATTEMPTS_PER_USERNAME = 10


class LoginThrottle:
    def __init__(
        self,
        *,
        per_client: int = LOGIN_ATTEMPTS_PER_CLIENT,
        per_username: int = LOGIN_ATTEMPTS_PER_USERNAME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = TokenBuckets(per_client, clock=clock)
        self._usernames = TokenBuckets(per_username, clock=clock)

    def acquire(self, client: str, username: str) -> None:
        """Spend one attempt for `client` and `username`, or raise RateLimited."""
        self._clients.acquire(client[:64], "login attempts from this address")
        key = username.strip().casefold()[:64] if isinstance(username, str) else ""
        self._usernames.acquire(key, "login attempts for this username")
