"""The dotted-IPv4 fast path of ``web.ip_prefix`` / ``web.ip_in_networks`` against ``ipaddress`` itself."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.validate import web

NETWORKS = ("10.20.0.0/16", "192.168.1.0/24", "0.0.0.0/8", "2001:db8::/32")
OCTETS = st.one_of(
    st.integers(0, 255).map(str),
    st.sampled_from(["00", "01", "007", "256", "300", "1000", "", " 1", "+1", "-1", "1e1", "٣", "0x1"]),
)
ADDRESSES = st.one_of(
    st.lists(OCTETS, min_size=3, max_size=5).map(".".join),
    st.tuples(
        st.sampled_from(["", " ", "\t", "\n"]), st.lists(OCTETS, min_size=4, max_size=4).map(".".join)
    ).map(lambda t: t[0] + t[1] + t[0]),
    st.sampled_from(["::ffff:10.20.1.1", "2001:db8::1", "::1", "10.20.1.1/24", "not an ip"]),
)


def _reference(ip: str) -> tuple[str | None, bool]:
    """What ipaddress alone answers: the caller's /24 (/48) and whether it is in NETWORKS."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None, False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    prefix = str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))
    networks = [ipaddress.ip_network(n) for n in NETWORKS]
    inside = any(addr.version == n.version and addr in n for n in networks)
    return prefix, inside


@settings(max_examples=500)
@given(ADDRESSES)
def test_ip_helpers_answer_as_ipaddress_does(ip: str) -> None:
    # Given any address text, dotted IPv4 or not, valid or not
    # When the helpers read it
    prefix, inside = web.ip_prefix(ip), web.ip_in_networks(ip, NETWORKS)
    # Then they answer exactly what the ipaddress module answers
    assert (prefix, inside) == _reference(ip)


def test_ipv4_prefix_and_membership_examples() -> None:
    # Given plain, padded and ambiguous dotted addresses
    # When the helpers read them
    # Then the /24 is the address's network and membership follows the CIDRs
    assert web.ip_prefix("10.20.3.77") == "10.20.3.0/24"
    assert web.ip_prefix(" 8.8.8.8\n") == "8.8.8.0/24"
    assert web.ip_prefix("010.20.3.77") is None  # a leading zero is ambiguous: refused, as ipaddress does
    assert web.ip_in_networks("10.20.255.1", NETWORKS) is True
    assert web.ip_in_networks("10.21.0.1", NETWORKS) is False
    assert web.ip_in_networks("192.168.1.9", NETWORKS) is True
    assert web.ip_in_networks("0.1.2.3", NETWORKS) is True
