"""The storefront's static files as ``clickstream serve`` hands them out, with the store's contract (web/README.md).

``web/store/dist/`` (built by ``make web``) is served at ``/``: ``/assets/*`` are content-hashed and cached for a
year (``immutable``), ``index.html`` is ``no-cache``, and any other ``GET`` that is not a file answers
``index.html`` with 200, because the store routes with real paths (``/c/<category>``, ``/p/<id>/<slug>``, ``/cart``,
``/auth/callback`` …). A path that escapes the folder (``..``, encoded or not, a symlink out) is never read.
``/config.json`` is not a file of the build: the server writes it for its own origin (:func:`local_config`).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_STORE_DIR = REPOSITORY / "web" / "store" / "dist"
INDEX = "index.html"
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True)
class StaticFile:
    content_type: str
    cache_control: str
    body: bytes


@dataclass(frozen=True)
class StoreFiles:
    """The built store in ``root``; :meth:`resolve` is what a ``GET`` of a path answers."""

    root: Path

    @property
    def built(self) -> bool:
        return (self.root / INDEX).is_file()

    def resolve(self, path: str) -> StaticFile:
        """The file at ``path`` (URL-encoded, as in the request line), else ``index.html`` (the SPA fallback).

        Raises ``FileNotFoundError`` when the store is not built."""
        root = self.root.resolve()
        target = root / INDEX
        try:
            relative = unquote(path, errors="strict").lstrip("/")
        except UnicodeDecodeError:
            relative = ""
        if relative and "\x00" not in relative:
            try:
                candidate = (root / relative).resolve()
                if candidate.is_relative_to(root) and candidate.is_file():
                    target = candidate
            except (OSError, ValueError):  # a name too long for the file system, a loop of links
                pass
        body = target.read_bytes()
        content_type = _TYPES.get(target.suffix.lower()) or (
            mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        )
        in_assets = target.parent == root / "assets" or root / "assets" in target.parents
        return StaticFile(content_type, ASSET_CACHE if in_assets else PAGE_CACHE, body)


def local_config(
    *,
    client_id: str,
    region: str,
    identity_pool_id: str,
    identity_endpoint: str,
    require_consent: bool,
    app_id: str = "shop-web",
    currency: str = "USD",
) -> dict[str, Any]:
    """``/config.json`` for the laptop stack: everything on the store's own origin (``apiBase`` and
    ``authDomain`` empty, the identity service a path of the server); ``redirectUri`` left to the store's default,
    ``{origin}/auth/callback``, which is what the local Hosted UI accepts."""
    return {
        "appId": app_id,
        "apiBase": "",
        "region": region,
        "identityPoolId": identity_pool_id,
        "identityEndpoint": identity_endpoint,
        "authDomain": "",
        "clientId": client_id,
        "requireConsent": require_consent,
        "currency": currency,
    }


def not_built_page(root: Path) -> bytes:
    """What ``/`` shows when the store has not been built."""
    import html

    shown = html.escape(str(root))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Store not built</title></head><body>"
        f"<h1>The store is not built</h1><p>No <code>{shown}/index.html</code>. Run <code>make web</code> (or "
        "<code>make serve</code>, which builds it first), then reload. The dashboard is at "
        "<a href='/dashboard'>/dashboard</a>.</p></body></html>"
    ).encode()
