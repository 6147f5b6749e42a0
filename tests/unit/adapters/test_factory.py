"""adapters.factory: one cached Adapters per settings, each adapter built on first use, stand-ins honoured."""

from __future__ import annotations

import pytest

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.config import Settings
from tests.fakes.state import MemoryStateStore


@pytest.fixture(autouse=True)
def _fresh_cache():
    adapters_for.cache_clear()
    yield
    adapters_for.cache_clear()


def test_the_same_settings_give_the_same_adapters_and_other_settings_others():
    # Given two equal settings and a third naming another lake
    one, same, other = Settings(), Settings(), Settings(lake_bucket="elsewhere")
    # Then the factory answers the same object for equal settings, and keeps what it built
    assert adapters_for(one) is adapters_for(same)
    assert adapters_for(one).lake is adapters_for(same).lake
    assert adapters_for(other) is not adapters_for(one)
    assert adapters_for(other).lake.bucket == "elsewhere"
    # And a cleared cache builds anew
    first = adapters_for(one)
    adapters_for.cache_clear()
    assert adapters_for(one) is not first


def test_adapters_are_built_from_the_settings_on_first_use():
    adapters = Adapters(Settings(raw_bucket="r", lake_bucket="l", state_table="t", delivery_stream="d"))
    assert isinstance(adapters.raw, S3ObjectStore) and adapters.raw.bucket == "r"
    assert isinstance(adapters.lake, S3ObjectStore) and adapters.lake.bucket == "l"
    assert isinstance(adapters.state, DynamoStateStore) and adapters.state.table_name == "t"
    assert adapters.sink.stream_name == "d"  # type: ignore[attr-defined]
    assert adapters.state is adapters.state  # built once


def test_stand_ins_are_used_as_given_and_a_missing_queue_is_an_error():
    state = MemoryStateStore()
    adapters = Adapters(Settings(), state=state)
    assert adapters.state is state
    with pytest.raises(LookupError, match="validate queue"):
        _ = adapters.queue


def test_the_warehouse_comes_from_the_url_each_time_it_is_asked_for():
    adapters = Adapters(Settings(warehouse_url="duckdb:///tmp/clickstream-factory-test.duckdb"))
    assert adapters.warehouse.dialect == "duckdb"
    assert adapters.warehouse == adapters.warehouse  # equal, not cached: a secret is read again on every run
