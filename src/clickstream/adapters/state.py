"""Pipeline state in DynamoDB: the ledger (one row per source object), the watermark, runs, tombstones and leases.

Table keys (see ``template.yaml`` ``StateTable``): partition ``pk`` and sort ``sk`` (strings), and a global
secondary index ``arrivals`` on ``gsi1pk`` (``arrivals#YYYY-MM-DD`` of the validation time) / ``gsi1sk``
(``<validated_at ISO>#<source key>``), so the Plan step queries the objects that arrived in a window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from clickstream.adapters.aws import client

ARRIVALS_INDEX = "arrivals"
WATERMARK_PK = "watermark"
TOMBSTONE_PREFIX = "tombstone#"
TOMBSTONE_SK = "tombstone"
TOMBSTONE_KINDS = ("anonymous_id", "user_id")
LEASE_PREFIX = "lease#"
LEASE_SK = "lease"


def iso(ts: datetime) -> str:
    """Fixed-width ISO-8601 UTC with microseconds, so string order is time order."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def id_hash(identifier: str) -> str:
    """sha256 hex of a person's identifier (anonymous_id or user_id): what a tombstone stores, never the id."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()


def is_erased(tombstones: frozenset[str] | set[str], *identifiers: str | None) -> bool:
    """True when any of ``identifiers`` hashes to a tombstone (``tombstones`` as returned by ``tombstones()``)."""
    return bool(tombstones) and any(i and id_hash(i) in tombstones for i in identifiers)


class StateStore(Protocol):
    def put_ledger(self, row: dict[str, Any]) -> None: ...
    def get_ledger(self, source_key: str) -> dict[str, Any] | None: ...
    def ledger_between(self, after: datetime | None, until: datetime) -> list[dict[str, Any]]: ...
    def all_ledger(self) -> Iterator[dict[str, Any]]: ...
    def get_watermark(self) -> datetime | None: ...
    def set_watermark(self, ts: datetime, run_id: str) -> bool: ...
    def put_item(self, pk: str, sk: str, attrs: dict[str, Any]) -> None: ...
    def get_item(self, pk: str, sk: str) -> dict[str, Any] | None: ...
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

    # -- generic -------------------------------------------------------------------------------------------
    def put_item(self, pk: str, sk: str, attrs: dict[str, Any]) -> None:
        item = {"pk": _s(pk), "sk": _s(sk)}
        item.update({k: _to_ddb(v) for k, v in attrs.items() if v is not None})
        client("dynamodb").put_item(TableName=self.table_name, Item=item)

    def get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = client("dynamodb").get_item(
            TableName=self.table_name, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
        )
        item = resp.get("Item")
        return _from_item(item) if item else None

    # -- ledger --------------------------------------------------------------------------------------------
    def put_ledger(self, row: dict[str, Any]) -> None:
        """Write (or overwrite) the ledger row of ``row['source_key']``; needs ``row['validated_at']`` (datetime)."""
        validated_at: datetime = row["validated_at"]
        attrs = dict(row)
        attrs["validated_at"] = iso(validated_at)
        attrs["gsi1pk"] = f"arrivals#{validated_at:%Y-%m-%d}"
        attrs["gsi1sk"] = f"{iso(validated_at)}#{row['source_key']}"
        self.put_item(f"ledger#{row['source_key']}", "ledger", attrs)

    def get_ledger(self, source_key: str) -> dict[str, Any] | None:
        return self.get_item(f"ledger#{source_key}", "ledger")

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
            ts = datetime.fromisoformat(row["validated_at"].replace("Z", "+00:00"))
            if ts <= until and (first is None or ts < first):
                first = ts
        return first

    def all_ledger(self) -> Iterator[dict[str, Any]]:
        yield from self._scan_sk("ledger")

    # -- tombstones (people under erasure; the id itself is never stored, only its sha256) ---------------------
    def put_tombstone(self, kind: str, id_hash: str, created_at: datetime | None = None) -> None:
        """Record that the person whose ``kind`` id hashes to ``id_hash`` (see :func:`id_hash`) asked to be
        forgotten. Idempotent: the first ``created_at`` is kept."""
        if kind not in TOMBSTONE_KINDS:
            raise ValueError(f"tombstone kind must be one of {TOMBSTONE_KINDS}, not {kind!r}")
        if len(id_hash) != 64 or any(c not in "0123456789abcdef" for c in id_hash):
            raise ValueError("id_hash must be a lower-case sha256 hex digest (use id_hash(identifier))")
        from clickstream.core import clock

        ddb = client("dynamodb")
        try:
            ddb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(TOMBSTONE_PREFIX + id_hash),
                    "sk": _s(TOMBSTONE_SK),
                    "kind": _s(kind),
                    "created_at": _s(iso(created_at or clock.now())),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return

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
        item = self.get_item(WATERMARK_PK, "pipeline")
        if not item:
            return None
        return datetime.fromisoformat(item["value"].replace("Z", "+00:00"))

    def set_watermark(self, ts: datetime, run_id: str) -> bool:
        """Move the watermark forward to ``ts``; a conditional write, so two overlapping executions can never
        move it backwards. Returns False (and changes nothing) when the stored watermark is already ≥ ts."""
        ddb = client("dynamodb")
        try:
            ddb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(WATERMARK_PK),
                    "sk": _s("pipeline"),
                    "value": _s(iso(ts)),
                    "run_id": _s(run_id),
                },
                ConditionExpression="attribute_not_exists(pk) OR #v < :new",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={":new": _s(iso(ts))},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- leases (at most one holder per name; expiry is the safety net when a holder never releases) ------------
    def acquire_lease(self, name: str, owner: str, until: datetime, *, now: datetime | None = None) -> bool:
        """Take the lease ``name`` for ``owner`` until ``until``: one conditional put that succeeds when nobody
        holds it, when the holder's lease has expired (``until <= now``, ``now`` defaulting to the pipeline
        clock), or when ``owner`` already holds it (a retried caller re-acquires, and its expiry moves to
        ``until``). Returns False, changing nothing, when another owner holds a live lease."""
        from clickstream.core import clock

        ddb = client("dynamodb")
        try:
            ddb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(LEASE_PREFIX + name),
                    "sk": _s(LEASE_SK),
                    "owner": _s(owner),
                    "until": _s(iso(until)),
                },
                ConditionExpression="attribute_not_exists(pk) OR #o = :owner OR #u <= :now",
                ExpressionAttributeNames={"#o": "owner", "#u": "until"},
                ExpressionAttributeValues={":owner": _s(owner), ":now": _s(iso(now or clock.now()))},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

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
        item = self.get_item(LEASE_PREFIX + name, LEASE_SK)
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
