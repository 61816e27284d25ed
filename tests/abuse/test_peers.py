"""client_ip: the address every per-IP limit counts, and TRUSTED_PROXIES (PROTOCOL.md 2)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from app.abuse.peers import client_ip

PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8:ffff::/48"))


def test_with_no_trusted_proxy_the_header_is_never_read() -> None:
    assert client_ip("198.51.100.4", "203.0.113.7", ()) == "198.51.100.4"
    assert client_ip("10.0.0.1", "203.0.113.7, 10.0.0.2", ()) == "10.0.0.1"
    assert client_ip(None, "203.0.113.7", ()) == "unknown"


def test_a_request_that_does_not_come_from_a_trusted_proxy_keeps_its_own_address() -> None:
    """A client that writes X-Forwarded-For itself, straight to the server, chooses nothing."""
    assert client_ip("198.51.100.4", "203.0.113.7", PROXIES) == "198.51.100.4"
    assert client_ip("198.51.100.4", "10.0.0.9", PROXIES) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client() -> None:
    # The proxy appended the address it saw (203.0.113.7); the client forged 192.0.2.1 before it.
    assert client_ip("10.0.0.1", "192.0.2.1, 203.0.113.7", PROXIES) == "203.0.113.7"
    # Two proxies: the second appended the first one's address, which is trusted, so the walk goes on.
    assert client_ip("10.0.0.1", "192.0.2.1, 203.0.113.7, 10.0.0.2", PROXIES) == "203.0.113.7"
    assert client_ip("10.0.0.1", "203.0.113.7", PROXIES) == "203.0.113.7"


def test_a_header_sent_several_times_is_read_as_one_list_in_order() -> None:
    """A proxy that adds its own X-Forwarded-For line instead of appending: the forged line first."""
    assert client_ip("10.0.0.1", ["192.0.2.1", "203.0.113.7"], PROXIES) == "203.0.113.7"
    assert client_ip("10.0.0.1", ["192.0.2.1, 198.51.100.1", "203.0.113.7, 10.0.0.3"], PROXIES) == "203.0.113.7"


def test_all_entries_trusted_means_the_left_most() -> None:
    assert client_ip("10.0.0.1", "10.1.2.3, 10.0.0.2", PROXIES) == "10.1.2.3"


@pytest.mark.parametrize(("header", "expected"), [
    ("192.0.2.1, garbage", "10.0.0.1"),  # garbage right after the proxy: the proxy itself
    ("192.0.2.1, garbage, 10.0.0.2", "10.0.0.2"),  # the last trusted hop before it
    ("192.0.2.1, , 10.0.0.2", "10.0.0.2"),  # an empty entry is no address either
    ("unknown", "10.0.0.1"),
    ("203.0.113.7" + "9" * 5000, "10.0.0.1"),
])
def test_an_entry_that_is_not_an_address_stops_the_walk_at_the_last_trusted_hop(header: str, expected: str) -> None:
    """Nothing an untrusted party wrote chooses the address: such clients share their proxy's limits."""
    assert client_ip("10.0.0.1", header, PROXIES) == expected


def test_a_header_with_no_entries_keeps_the_proxy_address() -> None:
    assert client_ip("10.0.0.1", "", PROXIES) == "10.0.0.1"
    assert client_ip("10.0.0.1", " , ", PROXIES) == "10.0.0.1"
    assert client_ip("10.0.0.1", [], PROXIES) == "10.0.0.1"
    assert client_ip("10.0.0.1", None, PROXIES) == "10.0.0.1"


def test_addresses_are_read_as_proxies_write_them_and_counted_in_one_form() -> None:
    assert client_ip("10.0.0.1", "203.0.113.7:41234", PROXIES) == "203.0.113.7"
    assert client_ip("10.0.0.1", "[2001:DB8::7]:443", PROXIES) == "2001:db8::7"
    assert client_ip("2001:db8:ffff::1", "2001:0db8:0000::0007", PROXIES) == "2001:db8::7"
    # A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6: still the trusted proxy 10.0.0.1.
    assert client_ip("::ffff:10.0.0.1", "203.0.113.7", PROXIES) == "203.0.113.7"
    assert client_ip("::ffff:198.51.100.4", None, ()) == "198.51.100.4"
