"""``clickstream deploy-web --stack-name NAME``: put the built store (``web/store/dist``, ``make web``) in a deployed
stack's store bucket, with the ``/config.json`` the stack's outputs make, and invalidate what CloudFront must not
serve stale (``make deploy-web STACK=NAME`` builds first).

What it writes, in order: the content-hashed ``assets/`` (a year, ``immutable``), then ``config.json``, then
``index.html`` (both ``no-cache``), so an ``index.html`` never names an asset that is not there yet. Files of earlier
deploys stay: an old hashed asset is what a shopper still on the previous page needs, and costs nothing.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clickstream.core.schema import MAX_APP_ID, PRINTABLE
from clickstream_cli.args import Subparsers, console

# The stack outputs a deploy needs (template.yaml's Outputs; StoreHosting=enabled).
STACK_OUTPUTS = (
    "ApiUrl",
    "StoreUrl",
    "StoreBucketName",
    "StoreDistributionId",
    "AuthDomainUrl",
    "UserPoolClientId",
    "GuestIdentityPoolId",
)
DEFAULT_DIST = Path("web/store/dist")
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
INVALIDATED = ("/index.html", "/config.json")
# A config.json in the build (a local one) is replaced by the stack's; the example is documentation, not the store.
NOT_DEPLOYED = frozenset({"config.json", "config.example.json"})
# Text types carry their charset; the rest come from mimetypes (application/octet-stream when unknown).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
}


class DeployError(Exception):
    """The stack or the build is not what a deploy needs (a clear message, exit 2)."""


@dataclass(frozen=True)
class Upload:
    key: str
    body: bytes
    content_type: str
    cache_control: str


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "deploy-web",
        help="upload the built store to a deployed stack, with its config.json",
        description=(
            "Upload web/store/dist (build it first: make web) to the stack's store bucket with the /config.json its "
            "outputs make (the API, the Hosted UI's domain and client, the identity pool, the region), then "
            "invalidate /index.html and /config.json on its CloudFront distribution. The stack needs "
            "StoreHosting=enabled."
        ),
    )
    parser.add_argument(
        "--stack-name", required=True, help="the deployed stack (its outputs name the resources)"
    )
    parser.add_argument(
        "--region", default=None, help="the stack's region (default: the AWS configuration's)"
    )
    parser.add_argument(
        "--dist", type=Path, default=DEFAULT_DIST, help=f"the built store (default {DEFAULT_DIST})"
    )
    parser.add_argument("--app-id", default="shop-web", help="the tracker's app_id (default shop-web)")
    parser.add_argument(
        "--api-base",
        default=None,
        help=(
            "config.json's apiBase (default: the stack's ApiUrl; '' for the distribution's own /v1/* routes, see "
            "docs/runbook.md for what that needs)"
        ),
    )
    consent = parser.add_mutually_exclusive_group()
    consent.add_argument(
        "--require-consent",
        dest="require_consent",
        action="store_true",
        default=True,
        help="nothing is tracked before the visitor accepts the banner (default)",
    )
    consent.add_argument(
        "--no-require-consent", dest="require_consent", action="store_false", help="track from the first page"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print config.json and the uploads, change nothing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    out = console()
    try:
        clients = Clients(args.region)
        stack = stack_outputs(clients.cloudformation, args.stack_name)
        config = store_config(
            stack,
            clients.region,
            app_id=args.app_id,
            require_consent=args.require_consent,
            api_base=args.api_base,
        )
        uploads = planned_uploads(args.dist, config)
        if args.dry_run:
            out.print(json.dumps(config, indent=2))
            for item in uploads:
                out.print(f"{item.key}  {item.content_type}  {item.cache_control}  {len(item.body)} bytes")
            return 0
        upload(clients.s3, stack["outputs"]["StoreBucketName"], uploads)
        invalidation = invalidate(clients.cloudfront, stack["outputs"]["StoreDistributionId"])
    except DeployError as exc:
        out.print(f"[red]deploy-web: {exc}[/]")
        return 2
    except (ClientError, BotoCoreError) as exc:  # no such stack, no credentials, a bucket that is not ours
        out.print(f"[red]deploy-web: {exc}[/]")
        return 2
    out.print(
        f"{len(uploads)} files to s3://{stack['outputs']['StoreBucketName']}, invalidation {invalidation} of "
        f"{', '.join(INVALIDATED)}; the store: {stack['outputs']['StoreUrl']}/"
    )
    return 0


class Clients:
    """boto3 clients in the stack's region (``--region``, else the AWS configuration's)."""

    def __init__(self, region: str | None) -> None:
        import boto3

        self.cloudformation = boto3.client("cloudformation", region_name=region)
        self.region: str = self.cloudformation.meta.region_name
        if not self.region:
            raise DeployError("no region: pass --region (make deploy-web REGION=...) or set AWS_REGION")
        self.s3 = boto3.client("s3", region_name=self.region)
        self.cloudfront = boto3.client("cloudfront", region_name=self.region)


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, dict[str, str]]:
    """The stack's outputs and parameters; a :class:`DeployError` naming the outputs a deploy misses."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    missing = [key for key in STACK_OUTPUTS if key not in outputs]
    if missing:
        raise DeployError(
            f"stack {stack_name} has no outputs {', '.join(missing)} (is StoreHosting enabled, and the stack "
            "deployed from this template?)"
        )
    return {"outputs": outputs, "parameters": parameters}


def store_config(
    stack: dict[str, dict[str, str]],
    region: str,
    *,
    app_id: str = "shop-web",
    require_consent: bool = True,
    api_base: str | None = None,
) -> dict[str, Any]:
    """``/config.json`` as web/README.md's table has it, from the stack's outputs and parameters.

    ``apiBase`` is the API's own URL unless given: signed-out batches are SigV4-signed for the host and path the
    browser posts to, and API Gateway checks the signature against its own host name and the stage's path, which
    the distribution's ``/v1/*`` route changes. A direct API needs the store's origin in the stack's AllowedOrigin.
    """
    outputs, parameters = stack["outputs"], stack["parameters"]
    if not valid_app_id(app_id):
        raise DeployError(
            f"--app-id must be 1-{MAX_APP_ID} characters without control or invisible ones (the pipeline's "
            f"identifier rule), got {app_id!r}"
        )
    store_url = outputs["StoreUrl"].rstrip("/")
    base = outputs["ApiUrl"].rstrip("/") if api_base is None else api_base.rstrip("/")
    if base:
        allowed = parameters.get("AllowedOrigin", "*")
        if urlsplit(base).scheme != "https":
            raise DeployError(f"apiBase must be an https URL or '' (same origin), got {base!r}")
        _check_cors(store_url, allowed)
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return {
        "appId": app_id,
        "apiBase": base,
        "region": region,
        "identityPoolId": outputs["GuestIdentityPoolId"],
        "identityEndpoint": f"https://cognito-identity.{region}.{suffix}/",
        "authDomain": outputs["AuthDomainUrl"].rstrip("/"),
        "clientId": outputs["UserPoolClientId"],
        "redirectUri": f"{store_url}/auth/callback",
        "logoutUri": f"{store_url}/",
        "requireConsent": require_consent,
        "currency": parameters.get("StoreCurrency", "USD"),
    }


def valid_app_id(app_id: str) -> bool:
    """The pipeline's rule for ``app_id`` (``clickstream.core.schema``), and text that UTF-8 can carry."""
    if not 1 <= len(app_id) <= MAX_APP_ID or not re.fullmatch(PRINTABLE, app_id):
        return False
    try:
        app_id.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _check_cors(store_url: str, allowed_origins: str) -> None:
    from clickstream.ingest.api import origin_allowed

    parts = urlsplit(store_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if not origin_allowed(origin, allowed_origins):
        raise DeployError(
            f"the stack's AllowedOrigin ({allowed_origins}) does not allow the store's origin {origin}: the "
            "browser would refuse every answer of the API. Add it to AllowedOrigin and deploy the stack again."
        )


def planned_uploads(dist: Path, config: dict[str, Any]) -> list[Upload]:
    """Every file of the built store plus ``config.json``: assets first, ``index.html`` last."""
    index = dist / "index.html"
    if not index.is_file() or not (dist / "assets").is_dir():
        raise DeployError(f"{dist} holds no built store (index.html and assets/): run make web first")
    files = sorted(p for p in dist.rglob("*") if p.is_file())
    uploads = []
    for path in files:
        key = path.relative_to(dist).as_posix()
        if key in NOT_DEPLOYED:
            continue
        cache = IMMUTABLE if key.startswith("assets/") else NO_CACHE
        uploads.append(Upload(key, path.read_bytes(), content_type(key), cache))
    uploads.append(planned_config(config))
    order = {"assets": 0, "other": 1, "config.json": 2, "index.html": 3}
    return sorted(
        uploads,
        key=lambda u: order.get(u.key, order["assets"] if u.key.startswith("assets/") else order["other"]),
    )


def planned_config(config: dict[str, Any]) -> Upload:
    body = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return Upload("config.json", body, CONTENT_TYPES[".json"], NO_CACHE)


def content_type(key: str) -> str:
    suffix = Path(key).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"


def upload(s3: Any, bucket: str, uploads: list[Upload]) -> None:
    for item in uploads:
        s3.put_object(
            Bucket=bucket,
            Key=item.key,
            Body=item.body,
            ContentType=item.content_type,
            CacheControl=item.cache_control,
        )


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    """An invalidation of ``index.html`` and ``config.json`` (assets are new names, nothing to invalidate)."""
    answer = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(INVALIDATED), "Items": list(INVALIDATED)},
            "CallerReference": f"deploy-web-{uuid.uuid4()}",
        },
    )
    return str(answer["Invalidation"]["Id"])
