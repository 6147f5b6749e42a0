"""The tracker the store ships (web/tracker) knows every event name the pipeline accepts, and sends no other."""

from __future__ import annotations

import re
from pathlib import Path

from clickstream.core.schema import GA4_EVENT_TYPES

EVENTS_JS = Path(__file__).resolve().parents[3] / "web" / "tracker" / "src" / "events.js"


def _tracker_names() -> set[str]:
    block = re.search(r"export const NAMES = \[(.*?)\];", EVENTS_JS.read_text(encoding="utf-8"), re.S)
    assert block, "NAMES not found in web/tracker/src/events.js"
    return set(re.findall(r'"([a-z_]+)"', block.group(1)))


def test_the_tracker_and_the_pipeline_share_one_list_of_event_names():
    names = _tracker_names()
    assert names == set(GA4_EVENT_TYPES), names ^ set(GA4_EVENT_TYPES)
