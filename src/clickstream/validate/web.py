"""URL, query-string and IP helpers for enrichment: page path, UTM fields, URL hygiene, e-mail scrubbing, IP prefixes.

All are pure; the ones on values that repeat a lot in real traffic (pages, referrers, addresses) are cached per
distinct input of ordinary size. Each runs in time linear in its input: the e-mail pattern is matched by RE2 (no
backtracking), and a page URL or referrer is capped (``text.URL_CAP``) before anything parses it.

**URL hygiene.** Query parameters that carry secrets (``SENSITIVE_URL_PARAMS``, configurable with the
``SENSITIVE_URL_PARAMS`` setting) are removed from page URLs and referrers, and so from everything derived from
them; the rest of the URL is kept as sent. A name matches case-insensitively after percent-decoding, and a name
ending in ``*`` matches every name it starts (``X-Amz-*``). A fragment is cleaned the same way when it holds
parameters (``#id_token=…&state=…``, or a hash route's ``#/callback?code=…``); any other fragment is kept.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import re2

from clickstream.core.config import SENSITIVE_URL_PARAMS
from clickstream.validate.text import URL_CAP, cap_chars, clean_text

EMAIL_PLACEHOLDER = "[email]"
EMAIL_PATTERN = r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
# The same pattern run by RE2: linear in the text, where Python's backtracking engine is quadratic on 'aaaa…@'.
_EMAIL = re2.compile("(?i)" + EMAIL_PATTERN)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Click ids that imply a paid-search visit when a URL carries no UTM parameters (as GA4 auto-tagging does).
CLICK_IDS = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
}
CACHE_MAX_CHARS = 512  # longer values are rare (and hostile): computed again rather than held in a cache

# A dotted IPv4 address exactly as ``ipaddress`` accepts one (ASCII digits, no leading zeros, octets <= 255): the
# common case, read without building address objects (several times cheaper; tests hold both ways equal).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
MAX_IP_CHARS = 64  # an IPv6 address with a zone is shorter: anything longer is no address

Utm = tuple[str | None, str | None, str | None, str | None, str | None]
NO_UTM: Utm = (None, None, None, None, None)


def scrub_emails(text: str | None) -> str | None:
    """``text`` with every e-mail address (plain or with ``%40``) replaced by ``[email]``."""
    if not text or ("@" not in text and "%40" not in text):
        return text
    scrubbed: str = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    return scrubbed


class SensitiveParams(NamedTuple):
    names: frozenset[str]  # lower case
    prefixes: tuple[str, ...]  # lower case, from the names given with a trailing *

    def match(self, name: str) -> bool:
        key = unquote_plus(name).strip().lower()
        return key in self.names or any(key.startswith(p) for p in self.prefixes)


@lru_cache(maxsize=64)
def sensitive_params(spec: str = SENSITIVE_URL_PARAMS) -> SensitiveParams:
    """The comma-separated setting as a matcher (``none`` or only blanks: nothing is removed)."""
    items = [item.strip().lower() for item in spec.split(",")]
    items = [item for item in items if item and item != "none"]
    return SensitiveParams(
        frozenset(i for i in items if not i.endswith("*")), tuple(i[:-1] for i in items if i.endswith("*"))
    )


DEFAULT_SENSITIVE = sensitive_params()


def _strip_pairs(text: str, sensitive: SensitiveParams) -> str | None:
    """``name=value`` pairs joined by ``&`` without the sensitive ones (None when none was removed)."""
    pairs = text.split("&")
    kept = [pair for pair in pairs if not sensitive.match(pair.split("=", 1)[0])]
    return None if len(kept) == len(pairs) else "&".join(kept)


def strip_sensitive(url: str, sensitive: SensitiveParams = DEFAULT_SENSITIVE) -> str:
    """``url`` without its sensitive query parameters and fragment parameters; everything else as sent."""
    if "=" not in url and "?" not in url and "#" not in url:
        return url
    if not sensitive.names and not sensitive.prefixes:
        return url
    base, hash_, fragment = url.partition("#")
    head, mark, query = base.partition("?")
    if mark:
        kept = _strip_pairs(query, sensitive)
        if kept is not None:
            base = f"{head}?{kept}" if kept else head
    if hash_:
        route, qmark, params = fragment.partition("?")
        if qmark:  # a hash route with its own query: #/callback?code=…
            kept = _strip_pairs(params, sensitive)
            if kept is not None:
                fragment = f"{route}?{kept}" if kept else route
        elif "=" in fragment:  # parameters in the fragment itself: #access_token=…&token_type=…
            kept = _strip_pairs(fragment, sensitive)
            if kept is not None:
                fragment = kept
        return f"{base}#{fragment}" if fragment else base
    return base


def _clean_url(url: str, sensitive: SensitiveParams) -> tuple[str, int | None]:
    """A page URL or referrer as stored: control characters replaced, secrets and e-mail addresses removed (both
    linear in the text), then capped at ``URL_CAP`` characters before any parser reads it. The cap comes last, so
    it never leaves part of a secret or an address behind, and the stored value never exceeds it."""
    text = scrub_emails(strip_sensitive(clean_text(url) or "", sensitive)) or ""
    return cap_chars(text, URL_CAP)


class PageUrl(NamedTuple):
    url: str  # control characters replaced, capped, sensitive parameters and e-mail addresses removed
    path: str
    host: str | None
    utm: Utm | None  # UTM fields from the query string, None when it carries none
    truncated: int | None = None  # the URL's length before the cap, when it was cut


def parse_page_url(url: str, sensitive: SensitiveParams = DEFAULT_SENSITIVE) -> PageUrl:
    """Cleaned URL, path, host and the query string's UTM fields (or click-id attribution)."""
    if len(url) <= CACHE_MAX_CHARS:
        return _parse_page_url(url, sensitive)
    return _parse_page_url.__wrapped__(url, sensitive)


@lru_cache(maxsize=65536)
def _parse_page_url(url: str, sensitive: SensitiveParams) -> PageUrl:
    clean, truncated = _clean_url(url, sensitive)
    try:
        parts = urlsplit(clean)
        host = parts.hostname
    except ValueError:
        return PageUrl(clean, "/", None, None, truncated)
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
    return PageUrl(clean, path, host, utm, truncated)


class Referrer(NamedTuple):
    url: str | None  # as stored: cleaned like a page URL
    host: str | None
    truncated: int | None = None  # the referrer's length before the cap, when it was cut


def parse_referrer(referrer: str | None, sensitive: SensitiveParams = DEFAULT_SENSITIVE) -> Referrer:
    """The stored referrer and its host (what the channel rules read)."""
    if not referrer:
        return Referrer(None, None)
    if len(referrer) <= CACHE_MAX_CHARS:
        return _parse_referrer(referrer, sensitive)
    return _parse_referrer.__wrapped__(referrer, sensitive)


@lru_cache(maxsize=65536)
def _parse_referrer(referrer: str, sensitive: SensitiveParams) -> Referrer:
    clean, truncated = _clean_url(referrer, sensitive)
    return Referrer(clean, url_host(clean), truncated)


def _clean_param(value: str | None) -> str | None:
    if value is None:
        return None
    value = (scrub_emails((clean_text(value) or "").strip()) or "")[:256]
    return value or None


def url_host(url: str | None) -> str | None:
    """Host name of a URL (lower case), or None when it has none."""
    if not url:
        return None
    if len(url) <= CACHE_MAX_CHARS:
        return _url_host(url)
    return _url_host.__wrapped__(url)


@lru_cache(maxsize=65536)
def _url_host(url: str) -> str | None:
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


def ip_prefix(ip: str | None) -> str | None:
    """The caller's network, never the address: IPv4 /24, IPv6 /48 (IPv4-mapped IPv6 as IPv4). None if invalid."""
    if not ip or len(ip) > MAX_IP_CHARS:
        return None
    return _ip_prefix(ip)


@lru_cache(maxsize=65536)
def _ip_prefix(ip: str) -> str | None:
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


def ip_in_networks(ip: str | None, spec: tuple[str, ...]) -> bool:
    """True when ``ip`` belongs to one of the CIDRs in ``spec``."""
    if not ip or not spec or len(ip) > MAX_IP_CHARS:
        return False
    return _ip_in_networks(ip, spec)


@lru_cache(maxsize=65536)
def _ip_in_networks(ip: str, spec: tuple[str, ...]) -> bool:
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
