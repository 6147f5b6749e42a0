"""Validation time of the worst content against ordinary content, request for request (issue 11's goal: the worst
1 MB request validates within 3x the time of an ordinary one of the same size).

``python -m bench.validate.hostile [--bytes 1048576] [--repeats 5] [--cpu 0]`` (also run at the end of
``python -m bench validate``).

Two requests of the same size (within 1 %) go through the ingest domain function, as the API would take them, and
their raw records are judged as the validate step judges one object (``engine.judge_to_parquet``, Parquet written):

- ordinary: store traffic as a browser sends it (product and category pages, searches, carts, purchases; pages
  and titles that repeat, one real-looking User-Agent);
- worst:    every value distinct and hostile: page URLs and referrers far past the 2,048-character cap,
            '@'-heavy (the input that made e-mail scrubbing quadratic), with secrets to strip; titles, item names,
            categories, ids, transaction ids and UTM values full of control characters and invisible characters;
            a 16 KB User-Agent of the kind that made crawlerdetect take seconds. (Lone surrogates are left out:
            the API refuses a body holding one, so no request carries them.)

Each case runs ``--repeats`` times (after one warm-up run, on core ``--cpu``), every run with the enrichment caches
emptied (each object is judged as if it were a container's first); the best run of each is reported, wall and
CPU seconds, and the ratio worst / ordinary. Both are judged on the path the step takes for an object of this
size (the event-by-event judge below ``engine.ENGINE_MIN_BYTES``) and, for comparison, on the engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36"
)
T0_MS = 1_772_460_000_000  # 2026-03-02T14:00:00Z
CONTROL = "\r\n\x0b\x1f\x00\x85\u2028\u202e"
URL_CONTROL = "\x00\x01\x7f\u202e\u200b"
LONG_EVERY = 32  # one event in this many carries the long URL and referrer


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uuid(n: int) -> str:
    import uuid

    return str(uuid.UUID(int=n))


def ordinary_event(i: int) -> dict[str, Any]:
    products = ("zenbook-14", "macbook-air-13", "thinkpad-x1", "xps-13", "galaxy-tab-s9", "dell-u2723qe")
    product = products[i % len(products)]
    kind = ("page_view", "page_view", "view_item", "page_ping", "add_to_cart", "page_view")[i % 6]
    event: dict[str, Any] = {
        "event_id": _uuid(i + 1),
        "event_type": kind,
        "occurred_at": _iso(T0_MS + i * 1000),
        "page": {
            "url": f"https://shop.example.com/laptops/{product}?utm_source=newsletter&utm_medium=email",
            "referrer": "https://www.google.com/",
            "title": f"{product.replace('-', ' ').title()} | Example Shop",
        },
    }
    if kind in ("view_item", "add_to_cart"):
        event["items"] = [
            {
                "product_id": f"LAP-{i % 6:03d}",
                "name": product.replace("-", " ").title(),
                "category": "Laptops",
                "brand": "Example",
                "price": 999.0,
                "quantity": 1,
            }
        ]
    if kind == "page_ping":
        event["properties"] = {"pp_max": 400, "pp_may": 1200}
    return event


def worst_event(i: int) -> dict[str, Any]:
    """Every value distinct and hostile, every event valid (so each goes through all of enrichment): one in four
    carries a URL and a referrer far past the cap, '@'-heavy; the others are short and dense with control
    characters, secrets and addresses in every text field (more events per byte, so more per-event work)."""
    ch = CONTROL[i % len(CONTROL)]
    raw = URL_CONTROL[i % len(URL_CONTROL)]  # a control character a URL may hold raw (no whitespace)
    if i % LONG_EVERY == 0:
        at = "a" * 700 + "@" + "b." * 40 + "@" * 100  # '@'-heavy: quadratic for a backtracking e-mail pattern
        url = (
            f"https://shop.example.com/{i}/{raw}" + "p" * 1600 + f"?q={at}&access_token=tok{i}"
            f"&X-Amz-Signature=sig{i}&utm_source=news%0D{i}&utm_medium=e%0Bmail#id_token=eyJ{i}&state=s"
        )
        referrer = (
            f"https://ref{i}.example.net/{ch}" + ("x%40" * 400) + f"?code=c{i}&email=j{i}@example.com&{at}"
        )
        title = (f"T{ch}{i}" + ch * 20) * 20
    else:
        url = f"https://shop.example.com/{i}/{raw}a@b.io?token=t{i}&utm_source=s%1F{i}&utm_campaign=c%85{i}#code=x"
        referrer = f"https://r{i}.example/{ch}?sig={i}&q=jane.{i}@example.org"
        title = f"{ch}Title {i}{ch}a.{i}@b.io{ch}"
    return {
        "event_id": _uuid(10_000_000 + i),
        "event_type": "purchase",
        "occurred_at": _iso(T0_MS + i * 1000),
        "page": {"url": url, "referrer": referrer, "title": title[:1024]},
        "items": [
            {
                "product_id": f"P{ch}{i}",
                "name": (f"N{ch}{i}" * 300)[:1000] if i % LONG_EVERY == 0 else f"N{ch}{i}",
                "category": (f"C{ch}@" * 300)[:1000] if i % LONG_EVERY == 0 else f"C{ch}{i}",
                "brand": f"B{ch}{i}",
                "price": 1.0,
                "quantity": 1,
            }
        ],
        "value": 1.0,
        "currency": "USD",
        "transaction_id": f"T{ch}{i}",
        "client_session_id": f"s{ch}{i}",
        "properties": {f"k{ch}": f"v{ch}{i}"},
    }


def _user_agent_16k() -> str:
    return "Mozilla/5.0 " + "a" * 16_000 + " (compatible; " + "@" * 380 + ")"


def build_request(kind: str, target_bytes: int) -> tuple[dict[str, Any], str]:
    """A native request body of ``kind`` just under ``target_bytes`` (JSON as a browser posts it), and its UA."""
    make = worst_event if kind == "worst" else ordinary_event
    context = (
        {"locale": "en-US", "utm": {"source": f"x{CONTROL}", "campaign": "@" * 500}}
        if kind == "worst"
        else {}
    )
    body: dict[str, Any] = {
        "app_id": "shop-web",
        "sent_at": _iso(T0_MS + 3_600_000),
        "anonymous_id": f"{kind}-visitor",
        "context": context,
        "events": [],
    }
    size = len(json.dumps(body, ensure_ascii=False).encode())
    misses = 0
    for i in range(10**7):  # fill up to the target: an event that does not fit is skipped, a smaller one may
        event = make(i)
        extra = len(json.dumps(event, ensure_ascii=False).encode()) + 2
        if size + extra > target_bytes:
            misses += 1
            if misses > 100:
                break
            continue
        body["events"].append(event)
        size += extra
    return body, (_user_agent_16k() if kind == "worst" else CHROME)


def ingest(body: dict[str, Any], user_agent: str) -> tuple[bytes, int]:
    """The raw object the ingest domain function writes for the request (JSON lines), and the body's size."""
    from clickstream.core.config import Settings
    from clickstream.ingest.request import HttpRequest
    from clickstream.ingest.service import ingest_native

    class Sink:
        records: list[bytes] = []

        def put_records(self, records: list[bytes]) -> None:
            self.records.extend(records)

    event = json.loads((REPO_ROOT / "events" / "ingest_native.json").read_text(encoding="utf-8"))
    text = json.dumps(body, ensure_ascii=False)
    event["body"] = text
    event["isBase64Encoded"] = False
    event["headers"]["User-Agent"] = user_agent
    event.setdefault("multiValueHeaders", {})["User-Agent"] = [user_agent]
    event["requestContext"]["requestTimeEpoch"] = T0_MS + 3_600_000
    sink = Sink()
    sink.records = []
    size = len(text.encode("utf-8"))
    settings = Settings(max_events_per_request=100_000, max_body_bytes=max(size, 1_048_576))
    ingest_native(HttpRequest.from_api_gateway(event), settings=settings, sink=sink)
    return b"".join(sink.records), size


def _clear_caches() -> None:
    from clickstream.validate import channel, useragent, web

    for fn in (web._parse_page_url, web._parse_referrer, web._url_host, web._ip_prefix, web._ip_in_networks):
        fn.cache_clear()
    useragent.classify.cache_clear()
    channel.default_channel.cache_clear()


def judge_once(raw: bytes, engine_path: bool) -> tuple[float, float, Any]:
    from clickstream.validate.engine import judge_to_parquet
    from clickstream.validate.judge import JudgeOptions

    options = JudgeOptions(lookback=timedelta(hours=72))
    _clear_caches()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        judgement = judge_to_parquet(
            raw,
            source_key="raw/bench",
            options=options,
            path=Path(tmp) / "v.parquet",
            min_bytes=0 if engine_path else None,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    judgement.check_balance()
    return wall, cpu, judgement


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench validate hostile")
    parser.add_argument("--bytes", type=int, default=1_048_576, help="size of each request body")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="the core the runs are pinned to")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    raws = {}
    for kind in ("ordinary", "worst"):
        body, agent = build_request(kind, args.bytes)
        raw, size = ingest(body, agent)
        raws[kind] = raw
        print(
            f"{kind:>8} request: {size:,} bytes, {len(body['events'])} events, user agent {len(agent):,} characters; "
            f"raw object {len(raw):,} bytes"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for engine_path, label in (
        (False, "shipped path for this size (event-by-event judge)"),
        (True, "engine (DuckDB)"),
    ):
        best: dict[str, tuple[float, float]] = {}
        for kind, raw in raws.items():
            judge_once(raw, engine_path)  # warm-up: imports, compiled patterns, DuckDB macros
            runs = [judge_once(raw, engine_path) for _ in range(args.repeats)]
            best[kind] = (min(r[0] for r in runs), min(r[1] for r in runs))
            j = runs[0][2]
            print(
                f"  {label}: {kind:>8}: {best[kind][0]:.3f} s wall, {best[kind][1]:.3f} s CPU "
                f"(best of {args.repeats}); {j.events_in} events: {j.validated} validated, "
                f"{j.quarantined_total} quarantined {j.quarantined}, {j.duplicates} duplicates [{j.engine}]"
            )
        wall = best["worst"][0] / best["ordinary"][0]
        cpu = best["worst"][1] / best["ordinary"][1]
        print(f"  {label}: worst / ordinary: {wall:.2f}x wall, {cpu:.2f}x CPU (goal <= 3x)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
