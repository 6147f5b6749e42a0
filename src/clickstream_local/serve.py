"""``clickstream serve``: the ingest API on ``127.0.0.1`` for a browser or a tracker, the pipeline behind it.

What API Gateway does in front of the ingest function is done here, then the REAL ``functions/ingest/app.py``
handler answers:

* CORS preflight (``OPTIONS``) for the allowed origins, with the methods, headers and max-age the stack's API
  declares in ``template.yaml``; a foreign origin gets no CORS headers and a 403;
* the Cognito User Pool authorizer on the token routes (``clickstream_local.auth``): a bad or missing token is a
  401 in the API's error shape, a good one becomes ``requestContext.authorizer.claims``;
* the REST proxy event: ``headers``/``multiValueHeaders``, the body base64-encoded for the binary media types
  (gzip) or bytes that are not UTF-8, ``requestContext.requestTimeEpoch`` and ``identity.sourceIp``.

The stack is moto, in this process (``create_resources``): Firehose → the raw bucket → an S3 notification in SQS.
``POST /local/run-pipeline`` drains that queue into the real validate handler and executes the real state machine
(``clickstream_local.bridge``) over what has arrived, then answers with the run's summary. ``GET /dashboard`` shows the
report once a run wrote one, else a status page; ``GET /health`` answers ``{"ok": true}``; ``GET
/.well-known/jwks.json`` publishes the local issuer's public keys.

The storefront is served too, with what it needs of the server (web/README.md, "the store's contract"): the built
``web/store/dist`` at ``/`` (``clickstream_local.store``: immutable assets, ``index.html`` for the store's routes),
``/config.json`` for this origin, the dashboard at ``/dashboard``, the user pool's Hosted UI
(``/oauth2/authorize``, ``/oauth2/token``: ``clickstream_local.hosted_ui``), the identity pool's unauthenticated
access at ``/local/cognito-identity`` and the guest routes' SigV4 check (``clickstream_local.identity``).

Nothing accepted is lost: the ingest handler's record sink is the spool (``clickstream_local.spool``), so a
``202`` is answered only once the request's raw records are ``fsync``-ed under ``DIR/spool/``; they go on to moto's
Firehose from there, and every start puts the whole spool through Firehose again (the moto stack lives in memory).

Handlers share one moto stack, so every call into it holds one lock; the HTTP server itself is threaded. Reading a
request has deadlines (an idle connection, a request line, headers and body that arrive too slowly are dropped or
answered ``408``), every answer the server gives itself is JSON (``414`` and ``431`` included), and a ``Host``
other than the bound address or ``localhost`` with the port is refused (DNS rebinding). Stopping closes the
connections that are waiting on their client, lets the requests in progress finish, runs a last pipeline pass if
anything arrived since the previous one, and leaves ``DIR/warehouse.duckdb`` closed and readable; a second signal
exits at once (the spool keeps what arrived).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clickstream_local.answers import HttpAnswer
from clickstream_local.auth import LocalIssuer, TokenVerifier, bearer_token
from clickstream_local.hosted_ui import HostedUI
from clickstream_local.identity import IdentityPool, SignatureRefused
from clickstream_local.spool import Spool, SpoolBusy, SpoolEntry
from clickstream_local.store import DEFAULT_STORE_DIR, StoreFiles, local_config, not_built_page

WAREHOUSE_FILE = "warehouse.duckdb"
REPORT_FILE = "report.html"
RUN_PIPELINE_PATH = "/local/run-pipeline"
HEALTH_PATH = "/health"
JWKS_PATH = "/.well-known/jwks.json"
DASHBOARD_PATH = "/dashboard"
CONFIG_PATH = "/config.json"
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"
IDENTITY_PATH = "/local/cognito-identity"
# Paths that belong to the API and the server, never to the store's SPA fallback.
API_PREFIXES = ("/v1/", "/guest/", "/com.snowplowanalytics.snowplow/", "/local/", "/oauth2/", "/.well-known/")
DEFAULT_ALLOWED_ORIGINS = ("http://localhost", "http://localhost:*", "http://127.0.0.1", "http://127.0.0.1:*")
# What template.yaml's ``Cors`` says, used when it cannot be read.
DEFAULT_CORS = {
    "methods": "OPTIONS,POST",
    "headers": "Authorization,Content-Type,Content-Encoding",
    "max_age": "600",
}
DEFAULT_BINARY_TYPES = frozenset({"application/gzip", "application/x-gzip"})
# API Gateway's own answer for a route it does not have (the stack's MISSING_AUTHENTICATION_TOKEN response).
NO_ROUTE_MESSAGE = "No such route, or a guest route called without a SigV4 signature."
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
IDLE_TIMEOUT_SECONDS = 5.0  # a kept-alive connection may wait this long for its next request line
READ_TIMEOUT_SECONDS = 30.0  # once the request line arrived: headers and body within this
WRITE_TIMEOUT_SECONDS = 5.0  # an answer the client does not read is dropped after this
# The JSON ``code`` of the answers the HTTP layer gives before a route sees the request.
_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
}


class ServeError(Exception):
    """The local endpoint cannot start as asked."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    out: Path = Path("serve-output")
    warehouse: str | None = None  # a URL; default duckdb:///<out>/warehouse.duckdb
    allow_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    allow_hosts: tuple[
        str, ...
    ] = ()  # Host names accepted besides the bound address, localhost and 127.0.0.1
    idle_timeout: float = IDLE_TIMEOUT_SECONDS
    read_timeout: float = READ_TIMEOUT_SECONDS
    store_dir: Path = DEFAULT_STORE_DIR  # the built store (make web)
    require_consent: bool = True  # the store's consent banner (config.json requireConsent)


# -- what API Gateway does ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GatewayShape:
    """The API's CORS answer and binary media types, read from ``template.yaml``."""

    allow_methods: str
    allow_headers: str
    max_age: str
    binary_media_types: frozenset[str]

    @classmethod
    def from_template(cls) -> GatewayShape:
        from clickstream_local.template import load_template

        api: dict[str, Any] = {}
        try:
            resources = load_template().get("Resources", {})
            api = next(
                (
                    r.get("Properties", {})
                    for r in resources.values()
                    if r.get("Type") == "AWS::Serverless::Api"
                ),
                {},
            )
        except FileNotFoundError:  # pragma: no cover - the template ships with the repository
            pass
        cors_value = api.get("Cors")
        cors: dict[str, Any] = cors_value if isinstance(cors_value, dict) else {}

        def literal(name: str, default: str) -> str:
            value = cors.get(name)
            return value.strip("'") if isinstance(value, str) else default

        types = {t.replace("~1", "/").lower() for t in api.get("BinaryMediaTypes", []) if isinstance(t, str)}
        return cls(
            allow_methods=literal("AllowMethods", DEFAULT_CORS["methods"]),
            allow_headers=literal("AllowHeaders", DEFAULT_CORS["headers"]),
            max_age=literal("MaxAge", DEFAULT_CORS["max_age"]),
            binary_media_types=frozenset(types) or DEFAULT_BINARY_TYPES,
        )


def api_gateway_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    claims: Mapping[str, Any] | None,
    stage: str,
    identity: Mapping[str, Any] | None = None,
    received_at: datetime,
    binary_media_types: frozenset[str] = DEFAULT_BINARY_TYPES,
) -> dict[str, Any]:
    """The REST proxy event API Gateway would hand the ingest function for this request.

    Claims are strings, as the Cognito authorizer passes them. The body is base64 when its media type is a binary
    one, or when its bytes are not UTF-8 text (API Gateway would mangle those; here the handler judges them).
    """
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    lower = {k.lower(): v for k, v in single.items()}
    media_type = lower.get("content-type", "").split(";")[0].strip().lower()
    encoded: str | None = None
    is_base64 = False
    if body:
        if media_type in binary_media_types:
            encoded, is_base64 = base64.b64encode(body).decode("ascii"), True
        else:
            try:
                encoded = body.decode("utf-8")
            except UnicodeDecodeError:
                encoded, is_base64 = base64.b64encode(body).decode("ascii"), True
    params = parse_qs(query, keep_blank_values=True)
    request_id = str(uuid.uuid4())
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "resourcePath": path,
        "httpMethod": method,
        "path": f"/{stage}{path}",
        "stage": stage,
        "protocol": "HTTP/1.1",
        "domainName": lower.get("host", "127.0.0.1"),
        "requestId": request_id,
        "extendedRequestId": request_id[:18],
        "requestTime": received_at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(received_at.timestamp() * 1000),
        "identity": {
            **(identity or {}),
            "sourceIp": source_ip,
            "userAgent": lower.get("user-agent", ""),
        },
    }
    if claims is not None:
        context["authorizer"] = {"claims": {k: _claim_text(v) for k, v in claims.items()}}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in params.items()} or None,
        "multiValueQueryStringParameters": params or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": encoded,
        "isBase64Encoded": is_base64,
    }


def _claim_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


# -- the stack behind the endpoint -------------------------------------------------------------------------------
class _SpoolSink:
    """The ingest handler's record sink: the durable spool; remembers the entry the current request wrote."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.written: list[SpoolEntry] = []

    def put_records(self, records: list[bytes]) -> None:
        self.written.append(self.spool.append(records))

    def take(self) -> list[SpoolEntry]:
        entries, self.written = self.written, []
        return entries


class LocalEndpoint:
    """The moto stack, the real handlers and the local issuer; every call into the stack holds one lock."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.out = options.out.resolve()
        self.warehouse_url = options.warehouse or (
            f"duckdb:///{(self.out / WAREHOUSE_FILE).as_posix().lstrip('/')}"
        )
        self.allowed_origins = ",".join(options.allow_origins)
        self.gateway = GatewayShape.from_template()
        self.issuer: LocalIssuer | None = None
        self.verifier: TokenVerifier | None = None
        self.hosted_ui: HostedUI | None = None
        self.identity_pool: IdentityPool | None = None
        self.store = StoreFiles(options.store_dir)
        self.spool = Spool(self.out)
        self.runs: list[dict[str, Any]] = []
        self.accepted_requests = 0
        self.accepted_events = 0
        self.rejected_requests = 0
        self.replayed_requests = 0  # spool entries put through Firehose again at start-up
        self.failed_objects: dict[str, str] = {}  # raw object key -> why validation failed
        self._unprocessed_requests = 0  # accepted (or replayed, never loaded) since the last pipeline run
        self._unforwarded: list[SpoolEntry] = []  # spooled, not yet in Firehose (its put failed)
        self._forwarded_upto = 0  # the highest spool sequence handed to Firehose
        self.final_error: str | None = None  # why the last pipeline pass at close failed
        self._lock = threading.RLock()
        self._exit = ExitStack()
        self._open = False

    # lifecycle
    def open(self) -> LocalEndpoint:
        from clickstream.adapters.sink import FirehoseSink
        from clickstream.core.clock import set_clock
        from clickstream.ingest.sink import set_sink
        from clickstream_local.bridge import FakeLambdaContext, create_pipeline_state_machine, load_handler
        from clickstream_local.runner import RUNTIME_ENV, context_factory, environment, quiet_logs
        from clickstream_local.stack import local_settings, local_stack

        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.spool.open()
        except SpoolBusy as exc:
            raise ServeError(f"{exc}: one clickstream serve per output folder") from exc
        exit_ = self._exit
        exit_.callback(self.spool.close)
        try:
            self.issuer = LocalIssuer.load_or_create(self.out)
            self.verifier = self.issuer.verifier()
            self.hosted_ui = HostedUI(self.issuer)
            self.identity_pool = IdentityPool(self.issuer.region)
            exit_.enter_context(environment({**RUNTIME_ENV, "POWERTOOLS_METRICS_DISABLED": "true"}))
            exit_.callback(quiet_logs())
            self.settings = local_settings(
                warehouse_url=self.warehouse_url, allowed_origins=self.allowed_origins
            )
            self.stack = exit_.enter_context(local_stack(self.settings, with_cognito=False))
            set_clock(None)
            self.firehose = FirehoseSink(self.settings.delivery_stream)
            self._sink = _SpoolSink(self.spool)
            set_sink(self._sink)
            exit_.callback(set_sink, None)
            self.sfn_arn = create_pipeline_state_machine(self.stack)
            self.ingest = load_handler("ingest")
            self.validate = load_handler("validate")
            self.ingest_context = context_factory(FakeLambdaContext, "ingest")
            self.validate_context = context_factory(FakeLambdaContext, "validate")
            self._replay_spool()
        except BaseException:
            exit_.close()
            raise
        self._open = True
        return self

    def _replay_spool(self) -> None:
        """Put every spooled request through Firehose again, one object each, as when it arrived: the lake is
        rebuilt whole, so the next run recomputes every visitor the spool holds (see ``clickstream_local.spool``)."""
        entries = self.spool.entries()
        loaded = self.spool.loaded
        self._unforwarded = list(entries)
        self._forward_spooled(strict=True)
        self.replayed_requests = len(entries)
        self._unprocessed_requests = sum(1 for e in entries if e.sequence > loaded)

    def _forward_spooled(self, *, strict: bool) -> None:
        """Hand spooled entries to Firehose in order; a failure leaves the rest for the next attempt (the next
        request or pipeline run) or, with ``strict``, raises."""
        while self._unforwarded:
            entry = self._unforwarded[0]
            try:
                self.firehose.put_records(entry.records())
            except Exception:
                if strict:
                    raise
                return
            self._unforwarded.pop(0)
            self._forwarded_upto = entry.sequence

    def close(self) -> dict[str, Any] | None:
        """Run a last pipeline pass if anything arrived since the previous one, then tear the stack down. A last
        pass that fails is recorded in ``final_error`` (what it would have loaded stays in the spool)."""
        with self._lock:
            if not self._open:
                return None
            final = None
            try:
                if self.pending():
                    final = self.run_pipeline()
            except Exception as exc:
                self.final_error = f"{type(exc).__name__}: {exc}"[:500]
            finally:
                self._open = False
                from clickstream.adapters.aws import reset_clients

                self._exit.close()
                reset_clients()
            return final

    def pending(self) -> bool:
        """Anything accepted that no pipeline run has processed yet, or a notification a run left on the queue
        (a validation that failed and will be retried). S3's test notification at start-up does not count."""
        from clickstream_local.runner import queue_depth

        with self._lock:
            if self._unprocessed_requests > 0 or self._unforwarded:
                return True
            return bool(self.runs) and queue_depth(self.stack.queue_url) > 0

    # requests
    def cors_preflight(self, origin: str | None) -> HttpAnswer:
        from clickstream.ingest.api import origin_allowed

        if not origin or not origin_allowed(origin, self.allowed_origins):
            return HttpAnswer.error(403, "forbidden", "origin not allowed")
        from clickstream.ingest.api import allows_every_origin

        credentials = (
            {} if allows_every_origin(self.allowed_origins) else {"Access-Control-Allow-Credentials": "true"}
        )
        return HttpAnswer(
            204,
            {
                "Access-Control-Allow-Origin": origin,
                **credentials,
                "Access-Control-Allow-Methods": self.gateway.allow_methods,
                "Access-Control-Allow-Headers": self.gateway.allow_headers,
                "Access-Control-Max-Age": self.gateway.max_age,
                "Vary": "Origin",
            },
        )

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """What the stack's Gateway Responses add to API Gateway's own answers, for an allowed origin only."""
        from clickstream.ingest.api import cors_headers

        headers = cors_headers(origin, self.allowed_origins)
        if headers:
            headers["Access-Control-Allow-Headers"] = self.gateway.allow_headers
        return headers

    def post_events(
        self, path: str, query: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpAnswer:
        """A token route: the authorizer's check, then the ingest handler with the proxy event."""
        lower = {k.lower(): v for k, v in headers}
        origin = lower.get("origin")
        assert self.verifier is not None
        try:
            claims = self.verifier.verify(bearer_token(lower.get("authorization")))
        except Exception as exc:  # InvalidToken, and anything a hostile token could provoke
            message = getattr(exc, "message", None) or "Unauthorized"
            with self._lock:
                self.rejected_requests += 1
            return HttpAnswer.error(
                401, "unauthorized", message, {**self.cors_headers(origin), "WWW-Authenticate": "Bearer"}
            )
        return self._ingest(path, query, headers, body, source_ip, claims=claims, identity=None)

    def post_guest_events(
        self, raw_path: str, query: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpAnswer:
        """A guest route: the SigV4 check of IAM authorization, then the ingest handler with the identity in the
        proxy event."""
        from urllib.parse import unquote

        joined: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        assert self.identity_pool is not None
        try:
            guest = self.identity_pool.verify(
                method="POST", raw_path=raw_path, query=query, headers=joined, body=body
            )
        except SignatureRefused as exc:
            with self._lock:
                self.rejected_requests += 1
            return HttpAnswer.error(
                exc.status, exc.code, exc.message, self.cors_headers(joined.get("origin"))
            )
        return self._ingest(
            unquote(raw_path), query, headers, body, source_ip, claims=None, identity=guest.request_context()
        )

    def _ingest(
        self,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        *,
        claims: Mapping[str, Any] | None,
        identity: Mapping[str, Any] | None,
    ) -> HttpAnswer:
        from clickstream.core import clock
        from clickstream_local.runner import handler_output_muted

        event = api_gateway_event(
            method="POST",
            path=path,
            query=query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            claims=claims,
            identity=identity,
            stage=self.settings.stage,
            received_at=clock.now(),
            binary_media_types=self.gateway.binary_media_types,
        )
        with self._lock, handler_output_muted():
            answer = self.ingest(event, self.ingest_context())
            # Whatever reached the spool goes on to Firehose, whatever the answer: the spool is what a restart
            # replays, and the moto stack should hold the same.
            written = self._sink.take()
            if written:
                self._unforwarded.extend(written)
                self._forward_spooled(strict=False)
            status = int(answer.get("statusCode", 500))
            if status == 202:
                self.accepted_requests += 1
                self.accepted_events += int(json.loads(answer.get("body") or "{}").get("accepted", 0))
                self._unprocessed_requests += 1
            else:
                self.rejected_requests += 1
        return _lambda_answer(answer)

    def run_pipeline(self) -> dict[str, Any]:
        """Drain the queue into validate, execute the state machine over what arrived, summarise the run.

        Each notification is validated on its own, so a raw object validation cannot finish is named in
        ``failed_objects`` with its error; the objects that did validate still go through the state machine. The
        spool is marked loaded up to what this run covered only when the run succeeded with no failed object.
        """
        from clickstream.adapters.storage import S3ObjectStore
        from clickstream.core import clock
        from clickstream_local.bridge import run_pipeline
        from clickstream_local.runner import (
            EXECUTION_POLL_SECONDS,
            WalkStats,
            drain_queue,
            handler_output_muted,
        )

        with self._lock, handler_output_muted():
            self._forward_spooled(strict=True)
            covered = self._forwarded_upto
            stats = WalkStats()
            drained = drain_queue(
                self.stack.queue_url, self.validate, self.validate_context, stats, batch_size=1
            )
            failed: dict[str, str] = {}
            for failure in stats.validate_errors:
                for key in failure["objects"]:
                    failed.setdefault(key, failure["error"])
            self.failed_objects.update(failed)
            as_of = clock.now()  # after validation, so the run's window covers what was just validated
            name = f"serve-{as_of:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
            result = run_pipeline(
                self.sfn_arn, name, {"as_of": as_of.isoformat()}, poll_seconds=EXECUTION_POLL_SECONDS
            )
            requests, self._unprocessed_requests = self._unprocessed_requests, 0
            if result["status"] == "SUCCEEDED" and not failed:
                self.spool.mark_loaded(covered)
            lake = S3ObjectStore(self.settings.lake_bucket)
            report = False
            if lake.exists(self.settings.report_key):
                (self.out / REPORT_FILE).write_bytes(lake.get_bytes(self.settings.report_key))
                report = True
            summary = {
                "run": name,
                "as_of": as_of.isoformat(),
                "status": result["status"],
                "failed_step": result["failed_step"],
                "error": result["error"],
                "requests_since_previous_run": requests,
                "objects_validated": drained,
                "validate_failures": stats.validate_failures,
                "failed_objects": [{"object": k, "error": v} for k, v in failed.items()],
                "output": result["output"],
                "warehouse": self.warehouse_counts(),
                "report_written": report,
            }
            self.runs.append(summary)
            return summary

    def warehouse_counts(self) -> dict[str, int]:
        from clickstream.adapters.warehouse import open_warehouse

        with open_warehouse(self.warehouse_url).connect() as conn:
            counts: dict[str, int] = {}
            for table in ("events", "sessions", "pipeline_runs"):
                try:
                    counts[table] = int(conn.query(f"SELECT count(*) FROM {table}")[0][0] or 0)
                except (
                    Exception
                ):  # not created yet: no run has loaded anything (each engine has its own error)
                    counts[table] = 0
            return counts

    def store_config(self) -> dict[str, Any]:
        """``/config.json``: the store's runtime configuration for this server (same origin for everything)."""
        assert self.issuer is not None and self.identity_pool is not None
        return local_config(
            client_id=self.issuer.client_id,
            region=self.issuer.region,
            identity_pool_id=self.identity_pool.pool_id,
            identity_endpoint=IDENTITY_PATH,
            require_consent=self.options.require_consent,
        )

    def status(self) -> dict[str, Any]:
        assert self.issuer is not None
        return {
            "ok": True,
            "issuer": self.issuer.issuer,
            "client_id": self.issuer.client_id,
            "warehouse": self.warehouse_url,
            "allowed_origins": list(self.options.allow_origins),
            "accepted_requests": self.accepted_requests,
            "accepted_events": self.accepted_events,
            "rejected_requests": self.rejected_requests,
            "pipeline_runs": len(self.runs),
            "spool": str(self.spool.dir),
            "replayed_requests": self.replayed_requests,
            "unprocessed_requests": self.unprocessed_requests,
            "failed_objects": [{"object": k, "error": v} for k, v in self.failed_objects.items()],
            "last_run": self.runs[-1] if self.runs else None,
        }

    @property
    def unprocessed_requests(self) -> int:
        """Requests accepted (or replayed from the spool, never loaded) since the last pipeline run."""
        return self._unprocessed_requests


def _lambda_answer(answer: Mapping[str, Any]) -> HttpAnswer:
    """A Lambda proxy integration answer as the HTTP response API Gateway sends."""
    headers: dict[str, str] = {}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if values:
            headers[name] = ", ".join(str(v) for v in values)
    for name, value in (answer.get("headers") or {}).items():
        headers[name] = str(value)
    body = answer.get("body") or ""
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
    return HttpAnswer(int(answer.get("statusCode", 500)), headers, data)


# -- HTTP -------------------------------------------------------------------------------------------------------
class LocalServer(ThreadingHTTPServer):
    """A threaded HTTP server that knows its connections: ``begin_shutdown`` closes those waiting on their client
    (idle, or sending a request too slowly) and ``server_close`` then waits for the requests in progress."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], endpoint: LocalEndpoint, log: Callable[[str], None] | None
    ) -> None:
        self.endpoint = endpoint
        self.log = log
        self.stopping = False
        self._connections: dict[socket.socket, bool] = {}  # socket -> busy (its request is being answered)
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)
        options = endpoint.options
        port = self.server_address[1]
        names = {"localhost", "127.0.0.1", str(options.host), *options.allow_hosts}
        self.allowed_hosts = frozenset(
            f"{name.lower()}:{port}" for name in names if name and name not in ("0.0.0.0", "")
        ) | (frozenset(n.lower() for n in names) if port == 80 else frozenset())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def host_allowed(self, host: str | None) -> bool:
        return host is not None and host.strip().lower() in self.allowed_hosts

    # connections
    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if self.stopping:
                return  # accepted while stopping: closed unanswered by shutdown_request
            self._connections[request] = False
        try:
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def set_busy(self, connection: socket.socket, busy: bool) -> bool:
        """Mark a connection as answering a request (or back to waiting on its client); ``False`` when the server
        is stopping, and the connection should end instead."""
        with self._connections_lock:
            if self.stopping:
                return False
            if connection in self._connections:
                self._connections[connection] = busy
            return True

    def begin_shutdown(self) -> None:
        """Stop taking requests: connections waiting on their client are closed now, those answering a request
        finish it and close."""
        with self._connections_lock:
            self.stopping = True
            waiting = [sock for sock, busy in self._connections.items() if not busy]
        for sock in waiting:
            with suppress(OSError):  # already closed by its client
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (reset, timed out, closed while stopping) is the client's business; anything
        else is logged, never printed as a bare traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        if self.log is not None:
            self.log(f"{client_address[0]} error while answering: {type(exc).__name__}: {exc}")


class _DeadlineSocketIO(socket.SocketIO):
    """The request stream, read against the handler's current deadline (not a timeout per ``recv``), so a client
    sending a byte now and then cannot hold a thread."""

    def __init__(self, sock: socket.socket, handler: _RequestHandler) -> None:
        super().__init__(sock, "rb")
        self._handler = handler
        self._deadline_sock = sock

    def readinto(self, b: Any) -> int | None:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request took too long to arrive")
        self._deadline_sock.settimeout(remaining)
        return super().readinto(b)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    server_version = "clickstream-serve"
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain stream setup() made: requests are read against deadlines instead
        self.rfile = io.BufferedReader(_DeadlineSocketIO(self.connection, self))
        self._answered = False

    def handle_one_request(self) -> None:
        # Waiting for the next request line: the idle deadline. parse_request moves it once the line arrived.
        if not self.server.set_busy(self.connection, False):
            self.close_connection = True
            return
        self._answered = False
        self.deadline = time.monotonic() + self.server.endpoint.options.idle_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        self.deadline = time.monotonic() + self.server.endpoint.options.read_timeout
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The HTTP layer's own refusals (bad request line, 414, 431, unknown method …) in the API's JSON shape."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method no route has: what API Gateway answers for it
            code, message = 404, NO_ROUTE_MESSAGE
        elif code == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:  # the client's request, never a 5xx
            code = 400
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
        self.log_error("code %d, message %s", code, message or phrase)
        self.close_connection = True
        self._send(HttpAnswer.error(code, _ERROR_CODES.get(code, "bad_request"), message or phrase))

    # routes
    def do_OPTIONS(self) -> None:
        self._dispatch(self._options)

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _other(self) -> None:
        self._dispatch(self._no_such_route)

    do_PUT = do_PATCH = do_DELETE = do_HEAD = _other

    def _dispatch(self, route: Callable[[], None]) -> None:
        """The Host check, then the route; an unexpected error is a JSON 500, never an empty reply."""
        host = self.headers.get("Host")
        if not self.server.host_allowed(host):
            self.close_connection = True  # the body, if any, is not read
            shown = (host or "")[:100]
            self._send(
                HttpAnswer.error(
                    403, "host_not_allowed", f"Host {shown!r} is not this server's address or localhost"
                )
            )
            return
        try:
            route()
        except Exception as exc:
            if self.server.log is not None:
                self.server.log(f"{self.address_string()} error: {type(exc).__name__}: {exc}")
            if not self._answered:
                self.close_connection = True
                self._send(HttpAnswer.error(500, "internal_error", f"{type(exc).__name__}: {exc}"[:500]))

    def _options(self) -> None:
        if self._discard_body() and self._begin():
            self._send(self.server.endpoint.cors_preflight(self.headers.get("Origin")))

    def _get(self) -> None:
        if not (self._discard_body() and self._begin()):
            return
        endpoint = self.server.endpoint
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._send(HttpAnswer.json(200, {"ok": True}))
        elif path == JWKS_PATH:
            assert endpoint.issuer is not None
            self._send(HttpAnswer.json(200, endpoint.issuer.jwks()))
        elif path == DASHBOARD_PATH:
            self._send(_dashboard_page(endpoint))
        elif path == "/local/status":
            self._send(HttpAnswer.json(200, endpoint.status()))
        elif path == CONFIG_PATH:
            self._send(HttpAnswer.json(200, endpoint.store_config(), {"Cache-Control": "no-store"}))
        elif path == AUTHORIZE_PATH:
            assert endpoint.hosted_ui is not None
            self._send(endpoint.hosted_ui.authorize_page(urlsplit(self.path).query, self._origin()))
        elif path.startswith(API_PREFIXES):
            self._no_route()
        else:
            self._send(_store_file(endpoint, path))

    def _post(self) -> None:
        from clickstream.ingest.api import (
            GUEST_NATIVE_PATH,
            GUEST_SNOWPLOW_PATH,
            NATIVE_PATH,
            SNOWPLOW_PATH,
            origin_allowed,
        )

        endpoint = self.server.endpoint
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None or not self._begin():
            return
        if url.path in (NATIVE_PATH, SNOWPLOW_PATH):
            source_ip = self.client_address[0]
            self._send(endpoint.post_events(url.path, url.query, list(self.headers.items()), body, source_ip))
        elif url.path in (GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH):
            source_ip = self.client_address[0]
            self._send(
                endpoint.post_guest_events(url.path, url.query, list(self.headers.items()), body, source_ip)
            )
        elif url.path == AUTHORIZE_PATH:
            assert endpoint.hosted_ui is not None
            self._send(endpoint.hosted_ui.sign_in(body, self._origin()))
        elif url.path == TOKEN_PATH:
            assert endpoint.hosted_ui is not None
            self._send(endpoint.hosted_ui.token(self.headers.get("Content-Type"), body))
        elif url.path == IDENTITY_PATH:
            assert endpoint.identity_pool is not None
            self._send(
                endpoint.identity_pool.call(
                    self.headers.get("X-Amz-Target"), self.headers.get("Content-Type"), body
                )
            )
        elif url.path == RUN_PIPELINE_PATH:
            origin = self.headers.get("Origin")
            if origin and not origin_allowed(origin, endpoint.allowed_origins):
                self._send(HttpAnswer.error(403, "forbidden", "origin not allowed"))
                return
            self._send(_run_answer(endpoint.run_pipeline(), endpoint.cors_headers(origin)))
        else:
            self._no_route()

    def _origin(self) -> str:
        """This server's origin as the browser sees it: the ``Host`` the request was checked against."""
        return f"http://{(self.headers.get('Host') or '').strip().lower()}"

    def _no_such_route(self) -> None:
        if self._discard_body() and self._begin():
            self._no_route()

    def _no_route(self) -> None:
        self._send(
            HttpAnswer.error(
                404,
                "not_found",
                NO_ROUTE_MESSAGE,
                self.server.endpoint.cors_headers(self.headers.get("Origin")),
            )
        )

    # reading
    def _begin(self) -> bool:
        """The request has been read: from here the server answers it whatever the client does (unless the
        server is stopping, when the connection just closes)."""
        if self.server.set_busy(self.connection, True):
            return True
        self.close_connection = True
        return False

    def _read_body(self) -> bytes | None:
        """The body, or ``None`` once answered (bad length, too large, too slow) or when the client went away."""
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(HttpAnswer.error(411, "length_required", "send the body with a Content-Length"))
            return None
        try:
            length = int(length_text) if length_text else 0
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(HttpAnswer.error(400, "bad_request", "invalid Content-Length"))
            return None
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            self._send(HttpAnswer.error(413, "payload_too_large", "Request Too Long"))
            return None
        if not length:
            return b""
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            self._send(HttpAnswer.error(408, "request_timeout", "the request body did not arrive in time"))
            return None
        except OSError:  # reset, or closed by a server that is stopping
            self.close_connection = True
            return None
        if len(body) < length:  # the client closed the connection mid-body
            self.close_connection = True
            return None
        return body

    def _discard_body(self) -> bool:
        """Read and drop a body no route uses; ``False`` when the connection must end instead."""
        length_text = self.headers.get("Content-Length") or "0"
        if length_text == "0":
            return True
        if not (length_text.isdigit() and int(length_text) <= MAX_REQUEST_BYTES):
            self.close_connection = True
            return True  # answered, then closed: the body is never read
        return self._read_body() is not None

    # writing
    def _send(self, answer: HttpAnswer) -> None:
        if self._answered:
            return
        self._answered = True
        if self.server.stopping:
            self.close_connection = True
        if self.request_version == "HTTP/0.9":  # what http.server assumes of an unparsable request line
            self.request_version, self.close_connection = "HTTP/1.0", True  # answer with a status line
        try:
            self.connection.settimeout(WRITE_TIMEOUT_SECONDS)
        except OSError:
            return  # the connection is gone
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")


def _run_answer(summary: dict[str, Any], headers: Mapping[str, str]) -> HttpAnswer:
    """A run's summary: 200 when it succeeded and every object validated, else a JSON 500 naming what failed."""
    failed = summary.get("failed_objects") or []
    if failed:
        names = "; ".join(f"{f['object']}: {f['error']}" for f in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        message = f"validation failed for {len(failed)} raw object(s): {names}{more}"
        error = {"code": "validation_failed", "message": message, "objects": failed}
    elif summary.get("status") != "SUCCEEDED":
        message = f"the pipeline run ended {summary.get('status')} in {summary.get('failed_step')}: " + str(
            summary.get("error")
        )
        error = {"code": "pipeline_failed", "message": message}
    else:
        return HttpAnswer.json(200, summary, headers)
    return HttpAnswer.json(500, {"error": error, "run": summary}, headers)


def _store_file(endpoint: LocalEndpoint, path: str) -> HttpAnswer:
    """A file of the built store, ``index.html`` for the store's own routes; a page saying to build it if not."""
    if not endpoint.store.built:
        return HttpAnswer(
            503,
            {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
            not_built_page(endpoint.store.root),
        )
    found = endpoint.store.resolve(path)
    return HttpAnswer(
        200,
        {
            "Content-Type": found.content_type,
            "Cache-Control": found.cache_control,
            "X-Content-Type-Options": "nosniff",
        },
        found.body,
    )


def _dashboard_page(endpoint: LocalEndpoint) -> HttpAnswer:
    """The latest report once a pipeline run wrote one, else a small status page."""
    report = endpoint.out / REPORT_FILE
    if report.is_file():
        return HttpAnswer(200, {"Content-Type": "text/html; charset=utf-8"}, report.read_bytes())
    status = endpoint.status()
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in status.items()
        if k != "last_run"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>clickstream serve</title></head><body>"
        "<h1>clickstream serve</h1><p>POST events to <code>/v1/events</code> or "
        "<code>/com.snowplowanalytics.snowplow/tp2</code> with <code>Authorization: Bearer $(clickstream token)"
        "</code>; <code>POST /local/run-pipeline</code> runs the pipeline and this page then shows the report.</p>"
        f"<table>{rows}</table></body></html>"
    )
    return HttpAnswer(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8"))


# -- running it ------------------------------------------------------------------------------------------------
@contextmanager
def running(options: ServeOptions, log: Callable[[str], None] | None = None) -> Iterator[LocalServer]:
    """The endpoint, bound and ready to ``serve_forever``; on exit, connections waiting on their client close,
    requests in progress finish, a last pipeline pass runs if anything arrived, and the stack is torn down."""
    endpoint = LocalEndpoint(options).open()
    try:
        try:
            server = LocalServer((options.host, options.port), endpoint, log)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
            ) from exc
        try:
            yield server
        finally:
            server.begin_shutdown()
            server.server_close()
    finally:
        endpoint.close()


def stop_server(server: LocalServer) -> None:
    """Stop ``serve_forever`` from another thread: close the connections waiting on their client first."""
    server.begin_shutdown()
    server.shutdown()


def serve(options: ServeOptions, *, out: Any = None, log: Callable[[str], None] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; print the URL (first line, flushed) and, at the end, what happened.

    The first signal stops taking requests and finishes (a last pipeline pass if anything arrived); a second one
    exits at once, the spool keeping what arrived for the next start."""
    out = out or sys.stdout
    stopping = threading.Event()
    current: list[LocalServer] = []

    def stop(_signum: int, _frame: Any) -> None:
        if stopping.is_set():
            print("Stopping now; the spool keeps what arrived for the next start.", file=out, flush=True)
            os._exit(1)
        stopping.set()
        if current:
            # shutdown() waits for serve_forever to return: never call it on the thread that runs it.
            threading.Thread(target=stop_server, args=(current[0],), daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with running(options, log) as server:
            current.append(server)
            endpoint = server.endpoint
            print(f"Listening on {server.url}", file=out, flush=True)
            assert endpoint.issuer is not None
            print(
                f"Issuer {endpoint.issuer.issuer} (client {endpoint.issuer.client_id}); "
                f"tokens: clickstream token --out-dir {options.out}",
                file=out,
                flush=True,
            )
            print(
                f"Spool {endpoint.spool.dir}: {endpoint.replayed_requests} requests put through Firehose again "
                f"({endpoint.unprocessed_requests} never reached a pipeline run)",
                file=out,
                flush=True,
            )
            store = (
                f"Store {server.url}/ ({endpoint.store.root}); dashboard {server.url}{DASHBOARD_PATH}"
                if endpoint.store.built
                else f"Store NOT BUILT ({endpoint.store.root}): run `make web`; dashboard {server.url}{DASHBOARD_PATH}"
            )
            print(store, file=out, flush=True)
            if not stopping.is_set():
                server.serve_forever(poll_interval=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(closing_line(endpoint), file=out, flush=True)
    failed = [r for r in endpoint.runs if r["status"] != "SUCCEEDED"]
    return 1 if failed or endpoint.failed_objects or endpoint.final_error else 0


def closing_line(endpoint: LocalEndpoint) -> str:
    """What the session did; raw objects that failed validation are named, their events not in the warehouse."""
    line = (
        f"Stopped: {endpoint.accepted_requests} requests ({endpoint.accepted_events} events) accepted, "
        f"{endpoint.rejected_requests} refused, {len(endpoint.runs)} pipeline runs"
    )
    failed = endpoint.failed_objects
    if failed:
        names = "; ".join(f"{key}: {error}" for key, error in list(failed.items())[:3])
        line += (
            f"; {len(failed)} raw object(s) FAILED validation, their events are not in the warehouse (kept in "
            f"{endpoint.spool.dir}, retried at the next start): {names}"
        )
    if endpoint.final_error:
        line += (
            f"; the last pipeline pass FAILED ({endpoint.final_error}): what it would have loaded stays in "
            f"{endpoint.spool.dir} for the next start"
        )
    return line + f"; warehouse {endpoint.warehouse_url}"
