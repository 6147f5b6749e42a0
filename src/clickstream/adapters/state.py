"""Pipeline state in DynamoDB: the ledger (one row per source object), the watermark, runs, tombstones and leases.

Callers speak in those terms (:class:`StateStore`); the table's keys stay in this module. Table keys (see
``template.yaml`` ``StateTable``): partition ``pk`` and sort ``sk`` (strings), and a global secondary index
``arrivals`` on ``gsi1pk`` (``arrivals#YYYY-MM-DD`` of the validation time) / ``gsi1sk``
(``<validated_at ISO>#<source key>``), so the Plan step queries the objects that arrived in a window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from clickstream.adapters.aws import client
from clickstream.core import clock
from clickstream.core.times import iso, parse_instant

ARRIVALS_INDEX = "arrivals"
LEDGER_PREFIX = "ledger#"
LEDGER_SK = "ledger"
WATERMARK_PK = "watermark"
WATERMARK_SK = "pipeline"
RUN_PREFIX = "run#"
RUN_SK = "run"
TOMBSTONE_PREFIX = "tombstone#"
TOMBSTONE_SK = "tombstone"
TOMBSTONE_KINDS = ("anonymous_id", "user_id")
LEASE_PREFIX = "lease#"
LEASE_SK = "lease"


class StateStore(Protocol):
    """The pipeline's state: ledger rows, the watermark, committed runs, tombstones and leases."""

    def put_ledger(self, row: Mapping[str, Any]) -> None: ...
    def get_ledger(self, source_key: str) -> dict[str, Any] | None: ...
    def ledger_between(self, after: datetime | None, until: datetime) -> list[dict[str, Any]]: ...
    def all_ledger(self) -> Iterator[dict[str, Any]]: ...
    def get_watermark(self) -> datetime | None: ...
    def watermark_run(self) -> str | None: ...
    def set_watermark(self, ts: datetime, run_id: str) -> bool: ...
    def put_run(self, record: Mapping[str, Any]) -> None: ...
    def get_run(self, run_id: str) -> dict[str, Any] | None: ...
    def put_tombstone(self, kind: str, id_hash: str, created_at: datetime | None = None) -> None: ...
    def tombstones(self) -> frozenset[str]: ...
    def acquire_lease(
        self, name: str, owner: str, until: datetime, *, now: datetime | None = None
    ) -> bool: ...
    def release_lease(self, name: str, owner: str) -> bool: ...
    def get_lease(self, name: str) -> dict[str, Any] | None: ...


@dataclass
class DynamoStateStore:
    table_name: str

    # -- items (the table's keys stay in this class) --------------------------------------------------------
    def _put_item(self, pk: str, sk: str, attrs: Mapping[str, Any]) -> None:
        item = {"pk": _s(pk), "sk": _s(sk)}
        item.update({k: _to_ddb(v) for k, v in attrs.items() if v is not None})
        client("dynamodb").put_item(TableName=self.table_name, Item=item)

    def _put_if(
        self,
        item: dict[str, Any],
        condition: str,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """A conditional put of ``item`` (DynamoDB attribute values); False, changing nothing, when ``condition``
        does not hold."""
        ddb = client("dynamodb")
        extra: dict[str, Any] = {}
        if names:
            extra["ExpressionAttributeNames"] = names
        if values:
            extra["ExpressionAttributeValues"] = values
        try:
            ddb.put_item(TableName=self.table_name, Item=item, ConditionExpression=condition, **extra)
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = client("dynamodb").get_item(
            TableName=self.table_name, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
        )
        item = resp.get("Item")
        return _from_item(item) if item else None

    # -- ledger --------------------------------------------------------------------------------------------
    def put_ledger(self, row: Mapping[str, Any]) -> None:
        """Write (or overwrite) the ledger row of ``row['source_key']``; needs ``row['validated_at']`` (datetime)."""
        validated_at: datetime = row["validated_at"]
        attrs = dict(row)
        attrs["validated_at"] = iso(validated_at)
        attrs["gsi1pk"] = f"arrivals#{validated_at:%Y-%m-%d}"
        attrs["gsi1sk"] = f"{iso(validated_at)}#{row['source_key']}"
        self._put_item(LEDGER_PREFIX + row["source_key"], LEDGER_SK, attrs)

    def get_ledger(self, source_key: str) -> dict[str, Any] | None:
        return self._get_item(LEDGER_PREFIX + source_key, LEDGER_SK)

    def ledger_between(self, after: datetime | None, until: datetime) -> list[dict[str, Any]]:
        """Ledger rows with ``after < validated_at <= until``, in arrival order."""
        start = after if after is not None else self._first_arrival(until)
        if start is None:
            return []
        rows: list[dict[str, Any]] = []
        day = start.date()
        lo = iso(after) + "#\uffff" if after is not None else "0"
        hi = iso(until) + "#\uffff"
        ddb = client("dynamodb")
        while day <= until.date():
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": ARRIVALS_INDEX,
                "KeyConditionExpression": "gsi1pk = :p AND gsi1sk BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {
                    ":p": _s(f"arrivals#{day:%Y-%m-%d}"),
                    ":lo": _s(lo),
                    ":hi": _s(hi),
                },
            }
            while True:
                resp = ddb.query(**kwargs)
                rows.extend(_from_item(i) for i in resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
            day += timedelta(days=1)
        return rows

    def _first_arrival(self, until: datetime) -> datetime | None:
        first = None
        for row in self.all_ledger():
            ts = parse_instant(row["validated_at"], field="validated_at")
            if ts <= until and (first is None or ts < first):
                first = ts
        return first

    def all_ledger(self) -> Iterator[dict[str, Any]]:
        yield from self._scan_sk(LEDGER_SK)

    # -- runs (what Commit records of every run it commits) ----------------------------------------------------
    def put_run(self, record: Mapping[str, Any]) -> None:
        """Write (or overwrite) the record of ``record['run_id']``."""
        self._put_item(RUN_PREFIX + record["run_id"], RUN_SK, record)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The recorded run, or None when the run never committed."""
        return self._get_item(RUN_PREFIX + run_id, RUN_SK)

    # -- tombstones (people under erasure; the id itself is never stored, only its sha256) ---------------------
    def put_tombstone(self, kind: str, id_hash: str, created_at: datetime | None = None) -> None:
        """Record that the person whose ``kind`` id hashes to ``id_hash`` (``core.ids.id_hash``) asked to be
        forgotten. Idempotent: the first ``created_at`` is kept."""
        if kind not in TOMBSTONE_KINDS:
            raise ValueError(f"tombstone kind must be one of {TOMBSTONE_KINDS}, not {kind!r}")
        if len(id_hash) != 64 or any(c not in "0123456789abcdef" for c in id_hash):
            raise ValueError("id_hash must be a lower-case sha256 hex digest (use id_hash(identifier))")
        self._put_if(
            {
                "pk": _s(TOMBSTONE_PREFIX + id_hash),
                "sk": _s(TOMBSTONE_SK),
                "kind": _s(kind),
                "created_at": _s(iso(created_at or clock.now())),
            },
            "attribute_not_exists(pk)",
        )

    def tombstones(self) -> frozenset[str]:
        """Every tombstoned id hash (a consistent scan of the tombstone items)."""
        return frozenset(
            item["pk"][len(TOMBSTONE_PREFIX) :]
            for item in self._scan_sk(TOMBSTONE_SK)
            if item["pk"].startswith(TOMBSTONE_PREFIX)
        )

    def _scan_sk(self, sk: str) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :k",
            "ExpressionAttributeValues": {":k": _s(sk)},
            "ConsistentRead": True,
        }
        ddb = client("dynamodb")
        while True:
            resp = ddb.scan(**kwargs)
            for item in resp.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- watermark -----------------------------------------------------------------------------------------
    def get_watermark(self) -> datetime | None:
        item = self._get_item(WATERMARK_PK, WATERMARK_SK)
        return parse_instant(item["value"], field="watermark") if item else None

    def watermark_run(self) -> str | None:
        """The run that last moved the watermark (None before the first)."""
        item = self._get_item(WATERMARK_PK, WATERMARK_SK)
        return item.get("run_id") if item else None

    def set_watermark(self, ts: datetime, run_id: str) -> bool:
        """Move the watermark forward to ``ts``; a conditional write, so two overlapping executions can never
        move it backwards. Returns False (and changes nothing) when the stored watermark is already ≥ ts."""
        return self._put_if(
            {"pk": _s(WATERMARK_PK), "sk": _s(WATERMARK_SK), "value": _s(iso(ts)), "run_id": _s(run_id)},
            "attribute_not_exists(pk) OR #v < :new",
            names={"#v": "value"},
            values={":new": _s(iso(ts))},
        )

    # -- leases (at most one holder per name; expiry is the safety net when a holder never releases) ------------
    def acquire_lease(self, name: str, owner: str, until: datetime, *, now: datetime | None = None) -> bool:
        """Take the lease ``name`` for ``owner`` until ``until``: one conditional put that succeeds when nobody
        holds it, when the holder's lease has expired (``until <= now``, ``now`` defaulting to the pipeline
        clock), or when ``owner`` already holds it (a retried caller re-acquires, and its expiry moves to
        ``until``). Returns False, changing nothing, when another owner holds a live lease."""
        return self._put_if(
            {"pk": _s(LEASE_PREFIX + name), "sk": _s(LEASE_SK), "owner": _s(owner), "until": _s(iso(until))},
            "attribute_not_exists(pk) OR #o = :owner OR #u <= :now",
            names={"#o": "owner", "#u": "until"},
            values={":owner": _s(owner), ":now": _s(iso(now or clock.now()))},
        )

    def release_lease(self, name: str, owner: str) -> bool:
        """Give the lease ``name`` back: a delete conditional on ``owner`` holding it. Returns False, changing
        nothing, when it is free or held by someone else (releasing twice is harmless)."""
        ddb = client("dynamodb")
        try:
            ddb.delete_item(
                TableName=self.table_name,
                Key={"pk": _s(LEASE_PREFIX + name), "sk": _s(LEASE_SK)},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_lease(self, name: str) -> dict[str, Any] | None:
        """The lease's ``owner`` and ``until`` (ISO), or None when nobody holds it (an expired one is returned)."""
        item = self._get_item(LEASE_PREFIX + name, LEASE_SK)
        return {"owner": item["owner"], "until": item["until"]} if item else None


# -- DynamoDB attribute conversion (JSON-ish values; nested dicts/lists stored as JSON strings) -------------
def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _to_ddb(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"BOOL": v}
    if isinstance(v, int | float | Decimal):
        return {"N": str(v)}
    if isinstance(v, str):
        return {"S": v}
    if isinstance(v, datetime):
        return {"S": iso(v)}
    return {"S": "json:" + json.dumps(v, sort_keys=True, default=str)}


def _from_ddb(v: dict[str, Any]) -> Any:
    if "S" in v:
        s = v["S"]
        return json.loads(s[5:]) if s.startswith("json:") else s
    if "N" in v:
        n = v["N"]
        return int(n) if n.lstrip("-").isdigit() else float(n)
    if "BOOL" in v:
        return v["BOOL"]
    if "NULL" in v:
        return None
    raise ValueError(f"unsupported DynamoDB value {v!r}")


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_ddb(v) for k, v in item.items()}
