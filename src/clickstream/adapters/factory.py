"""The one place adapters are built: :class:`Adapters`, from the settings, each adapter on first use.

Every Lambda step, handler and operation takes its adapters from here (``adapters_for(settings)``, cached per
settings, so a warm container reuses them); tests and the laptop stack pass stand-ins to the constructor instead.
Building an adapter opens nothing: boto3 clients are created on their first call (``adapters.aws``) and a warehouse
connection on ``warehouse.connect()``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from clickstream.core.config import Settings

if TYPE_CHECKING:  # the modules are imported when an adapter is first built: ingest's cold start needs one
    from clickstream.adapters.executions import Executions
    from clickstream.adapters.queue import Queue
    from clickstream.adapters.sink import RecordSink
    from clickstream.adapters.state import StateStore
    from clickstream.adapters.storage import ObjectStore
    from clickstream.adapters.warehouse import Warehouse


class Adapters:
    """The raw and lake buckets, the state table, the record sink, the warehouse, Step Functions executions and
    (for a back-fill's re-validation) the validate queue of one configuration."""

    def __init__(
        self,
        settings: Settings,
        *,
        raw: ObjectStore | None = None,
        lake: ObjectStore | None = None,
        state: StateStore | None = None,
        sink: RecordSink | None = None,
        warehouse: Warehouse | None = None,
        executions: Executions | None = None,
        queue: Queue | None = None,
    ) -> None:
        self.settings = settings
        self._raw, self._lake, self._state, self._sink = raw, lake, state, sink
        self._warehouse, self._executions, self._queue = warehouse, executions, queue

    @property
    def raw(self) -> ObjectStore:
        """The raw zone bucket (``Settings.raw_bucket``)."""
        if self._raw is None:
            from clickstream.adapters.storage import S3ObjectStore

            self._raw = S3ObjectStore(self.settings.raw_bucket)
        return self._raw

    @property
    def lake(self) -> ObjectStore:
        """The lake bucket (``Settings.lake_bucket``)."""
        if self._lake is None:
            from clickstream.adapters.storage import S3ObjectStore

            self._lake = S3ObjectStore(self.settings.lake_bucket)
        return self._lake

    @property
    def state(self) -> StateStore:
        """The state table (``Settings.state_table``)."""
        if self._state is None:
            from clickstream.adapters.state import DynamoStateStore

            self._state = DynamoStateStore(self.settings.state_table)
        return self._state

    @property
    def sink(self) -> RecordSink:
        """The Firehose delivery stream ingest writes to (``Settings.delivery_stream``)."""
        if self._sink is None:
            from clickstream.adapters.sink import FirehoseSink

            self._sink = FirehoseSink(self.settings.delivery_stream)
        return self._sink

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse: ``Settings.warehouse_url``, else the Secrets Manager secret, read again on every access
        (so a rotated password is picked up by the next run, not only by the next container)."""
        if self._warehouse is not None:
            return self._warehouse
        from clickstream.adapters.warehouse import warehouse_from_settings

        return warehouse_from_settings(self.settings)

    @property
    def executions(self) -> Executions:
        """Step Functions executions (starting and following a back-fill)."""
        if self._executions is None:
            from clickstream.adapters.executions import StepFunctionsExecutions

            self._executions = StepFunctionsExecutions()
        return self._executions

    @property
    def queue(self) -> Queue:
        """The validate queue, for a back-fill that re-validates; only an operator's command names it."""
        if self._queue is None:
            raise LookupError("no validate queue configured: a re-validating back-fill needs the queue's URL")
        return self._queue


@lru_cache(maxsize=8)
def adapters_for(settings: Settings) -> Adapters:
    """The adapters of ``settings``, built once per process and settings (tests call ``adapters_for.cache_clear()``
    after changing the environment, as they do for ``get_settings``)."""
    return Adapters(settings)
