"""URL, query-string and IP helpers for enrichment: page path, UTM fields, e-mail scrubbing, IP prefixes.

All are pure and cached per distinct input (pages, referrers and addresses repeat a lot in real traffic).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

EMAIL_PLACEHOLDER = "[email]"
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", re.IGNORECASE
)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Click ids that imply a paid-search visit when a URL carries no UTM parameters (as GA4 auto-tagging does).
CLICK_IDS = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
}

# A dotted IPv4 address exactly as ``ipaddress`` accepts one (ASCII digits, no leading zeros, octets <= 255): the
# common case, read without building address objects (several times cheaper; tests hold both ways equal).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")

Utm = tuple[str | None, str | None, str | None, str | None, str | None]
NO_UTM: Utm = (None, None, None, None, None)


def scrub_emails(text: str | None) -> str | None:
    """``text`` with every e-mail address (plain or with ``%40``) replaced by ``[email]``."""
    if not text or ("@" not in text and "%40" not in text):
        return text
    return _EMAIL.sub(EMAIL_PLACEHOLDER, text)


class PageUrl(NamedTuple):
    url: str  # e-mail addresses scrubbed
    path: str
    host: str | None
    utm: Utm | None  # UTM fields from the query string, None when it carries none


@lru_cache(maxsize=65536)
def parse_page_url(url: str) -> PageUrl:
    """Scrubbed URL, path, host and the query string's UTM fields (or click-id attribution)."""
    clean = scrub_emails(url) or ""
    try:
        parts = urlsplit(clean)
        host = parts.hostname
    except ValueError:
        return PageUrl(clean, "/", None, None)
    path = parts.path or "/"
    utm: Utm | None = None
    query = parts.query
    if query and ("utm_" in query or "clid" in query or "clkid" in query or "braid" in query):
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=False):
            params.setdefault(key.lower(), value)
        found = [_clean_param(params.get(name)) for name in UTM_FIELDS]
        if any(found):
            utm = (found[0], found[1], found[2], found[3], found[4])
        else:
            for click_id, (source, medium) in CLICK_IDS.items():
                if click_id in params:
                    utm = (source, medium, None, None, None)
                    break
    return PageUrl(clean, path, host, utm)


def _clean_param(value: str | None) -> str | None:
    if value is None:
        return None
    value = (scrub_emails(value.strip()) or "")[:256]
    return value or None


@lru_cache(maxsize=65536)
def url_host(url: str | None) -> str | None:
    """Host name of a URL (lower case), or None when it has none."""
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def context_utm(context: dict[str, Any] | None) -> Utm:
    """UTM fields from an envelope context: ``{"utm": {"source": …}}``, ``{"utm_source": …}`` or ``{"campaign": …}``."""
    if not context:
        return NO_UTM
    nested = context.get("utm")
    if not isinstance(nested, dict):
        nested = context.get("campaign") if isinstance(context.get("campaign"), dict) else {}
    values = []
    for name in UTM_FIELDS:
        short = name[4:]
        value = nested.get(name, nested.get(short)) if nested else None
        if value is None:
            value = context.get(name)
        values.append(_clean_param(value) if isinstance(value, str) else None)
    return (values[0], values[1], values[2], values[3], values[4])


@lru_cache(maxsize=65536)
def ip_prefix(ip: str | None) -> str | None:
    """The caller's network, never the address: IPv4 /24, IPv6 /48 (IPv4-mapped IPv6 as IPv4). None if invalid."""
    if not ip:
        return None
    dotted = _IPV4.fullmatch(ip.strip())
    if dotted is not None:
        return f"{dotted[1]}.{dotted[2]}.{dotted[3]}.0/24"
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


@lru_cache(maxsize=64)
def parse_networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs (``settings.internal_networks``) as network objects; invalid entries raise ValueError."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in spec)


@lru_cache(maxsize=64)
def _ipv4_masks(spec: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """The IPv4 networks of ``spec`` as (network address, netmask) integers."""
    return tuple(
        (int(net.network_address), int(net.netmask)) for net in parse_networks(spec) if net.version == 4
    )


@lru_cache(maxsize=65536)
def ip_in_networks(ip: str | None, spec: tuple[str, ...]) -> bool:
    """True when ``ip`` belongs to one of the CIDRs in ``spec``."""
    if not ip or not spec:
        return False
    dotted = _IPV4.fullmatch(ip.strip())
    if dotted is not None:
        value = int.from_bytes(bytes(int(dotted[i]) for i in range(1, 5)), "big")
        return any(value & mask == network for network, mask in _ipv4_masks(spec))
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in parse_networks(spec))
