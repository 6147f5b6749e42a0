"""Rewrite the pipeline samples of ``events/`` from the sample hour's run, as ``clickstream invoke`` seeds it.

``.venv/bin/python scripts/refresh_sample_events.py``: the payloads the state machine passes between the steps of the
sample hour's run (``clickstream_local.invoke.sample_chain``) become ``events/sessionize.json``, ``load.json``,
``aggregate.json`` and ``commit.json``, and ``validate_sqs.json`` gets the sample object's size and ETag.
``tests/integration/test_invoke.py`` fails when they differ (after a change to the steps' contracts or the
generator), and names this script.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clickstream_local.invoke import sample_chain

EVENTS = Path(__file__).resolve().parents[1] / "events"


def write(name: str, doc: object) -> None:
    (EVENTS / name).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote events/{name}")


def main() -> int:
    chain = sample_chain()
    for name in ("sessionize", "load", "aggregate", "commit"):
        write(f"{name}.json", chain[name])
    sample = json.loads((EVENTS / "validate_sqs.json").read_text(encoding="utf-8"))
    body = json.loads(sample["Records"][0]["body"])
    body["Records"][0]["s3"]["object"].update({"size": chain["raw"]["size"], "eTag": chain["raw"]["etag"]})
    sample["Records"][0]["body"] = json.dumps(body)
    write("validate_sqs.json", sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
