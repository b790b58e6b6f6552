"""X-Forwarded-For is believed only from configured proxies, read from the right."""

from __future__ import annotations

import pytest

from serving.client_address import TrustedProxies, client_address

NONE = TrustedProxies.parse("")
LOCAL_PROXY = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("127.0.0.1", ["198.51.100.7"], NONE, "127.0.0.1"),  # default: never believed
        ("203.0.113.5", ["198.51.100.7"], LOCAL_PROXY, "203.0.113.5"),  # not a proxy
        ("127.0.0.1", ["198.51.100.7"], LOCAL_PROXY, "198.51.100.7"),
        # The client can prepend anything; the proxies append: read from the right.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7, 10.1.2.3"], LOCAL_PROXY, "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.7"], LOCAL_PROXY, "198.51.100.7"),
        ("127.0.0.1", [], LOCAL_PROXY, "127.0.0.1"),
        ("127.0.0.1", ["10.0.0.1, 10.0.0.2"], LOCAL_PROXY, "10.0.0.1"),  # all proxies
        ("127.0.0.1", ["198.51.100.7"], TrustedProxies.parse("*"), "198.51.100.7"),
        (None, [], NONE, "unknown"),
    ],
)
def test_the_client_behind_trusted_proxies(peer, forwarded, trusted, client) -> None:
    assert client_address(peer, forwarded, trusted) == client


def test_an_unparsable_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        TrustedProxies.parse("127.0.0.1, proxy.example")
