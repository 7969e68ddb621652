"""The address a request comes from behind trusted proxies: X-Forwarded-For is read from the right, never the left."""

from __future__ import annotations

import pytest

from sessiongate.dialects.base import forwarded_client
from sessiongate.settings import Settings, SettingsError

PROXY = "127.0.0.1"
CLIENT = "203.0.113.9"


@pytest.mark.parametrize("spoofed", ["198.51.100.1", "10.0.0.1", "127.0.0.1", "not-an-address", ""])
def test_what_the_client_writes_at_the_left_is_never_its_address(spoofed):
    # The client sends "X-Forwarded-For: <spoofed>"; its one proxy appends the address it saw.
    assert forwarded_client(PROXY, [f"{spoofed}, {CLIENT}"]) == CLIENT


def test_without_the_header_the_peer_is_the_client():
    assert forwarded_client(CLIENT, []) == CLIENT


def test_two_trusted_proxies_are_skipped_from_the_right():
    # client -> outer proxy (appends the client) -> inner proxy (appends the outer proxy) -> gateway
    assert forwarded_client(PROXY, [f"1.1.1.1, {CLIENT}, 10.0.0.5"], proxies=2) == CLIENT
    assert forwarded_client(PROXY, [f"{CLIENT}, 10.0.0.5"], proxies=2) == CLIENT


def test_fewer_hops_than_proxies_give_the_left_most_hop_a_proxy_wrote():
    assert forwarded_client(PROXY, [CLIENT], proxies=3) == CLIENT
    assert forwarded_client(CLIENT, [], proxies=3) == CLIENT


def test_several_header_lines_are_one_list():
    assert forwarded_client(PROXY, ["1.1.1.1", CLIENT]) == CLIENT


def test_trusted_networks_skip_every_proxy_inside_them():
    networks = ["127.0.0.0/8", "10.0.0.0/8"]
    assert forwarded_client(PROXY, [f"1.1.1.1, {CLIENT}, 10.1.2.3, 10.4.5.6"], networks=networks) == CLIENT
    assert forwarded_client(PROXY, [f"{CLIENT}"], networks=networks) == CLIENT


def test_a_peer_outside_the_trusted_networks_is_the_client_whatever_it_claims():
    assert forwarded_client("192.0.2.50", [f"1.1.1.1, {CLIENT}"], networks=["10.0.0.0/8"]) == "192.0.2.50"


def test_when_every_hop_is_trusted_the_left_most_one_is_the_client():
    assert forwarded_client(PROXY, ["10.0.0.7, 10.0.0.8"], networks=["10.0.0.0/8", "127.0.0.1/32"]) == "10.0.0.7"


@pytest.mark.parametrize("junk", ["unknown", "", "x" * 300, "fe80::1%eth0", "1.2.3.4.5", "_hidden"])
def test_an_entry_that_is_no_address_stops_at_the_hop_to_its_right(junk):
    # A trusted proxy writes addresses; anything else was not written by one, so the walk goes no further left.
    assert forwarded_client(PROXY, [f"{CLIENT}, {junk}"]) == PROXY
    networks = ["127.0.0.0/8", "10.0.0.0/8"]
    assert forwarded_client(PROXY, [f"{CLIENT}, {junk}, 10.1.2.3"], networks=networks) == "10.1.2.3"


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("203.0.113.9:41234", "203.0.113.9"),
        ("[2001:db8::7]:41234", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_addresses_are_read_in_every_form_proxies_write_and_kept_in_one(written, address):
    assert forwarded_client(PROXY, [f"1.1.1.1, {written}"]) == address


def test_an_address_is_never_longer_than_the_stored_column():
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert len(forwarded_client(PROXY, [longest])) <= 64


def test_proxy_settings_are_checked_at_start_up():
    settings = Settings.from_env(
        {
            "SESSIONGATE_TRUST_FORWARDED": "true",
            "SESSIONGATE_TRUSTED_PROXIES": "2",
            "SESSIONGATE_TRUSTED_PROXY_NETWORKS": "10.0.0.0/8, 2001:db8::/32",
        }
    )
    assert (settings.trusted_proxies, settings.trusted_proxy_networks) == (2, ("10.0.0.0/8", "2001:db8::/32"))
    assert Settings().trusted_proxies == 1
    with pytest.raises(SettingsError, match="trusted_proxy_networks"):
        Settings.from_env({"SESSIONGATE_TRUSTED_PROXY_NETWORKS": "10.0.0.0/33"})
    with pytest.raises(SettingsError, match="trusted_proxies"):
        Settings.from_env({"SESSIONGATE_TRUSTED_PROXIES": "0"})
