-- The load's row in pipeline_runs, with what the run's Sessionize tasks read and wrote. loaded_at keeps the first
-- load's time, so re-loading the same run leaves the table identical.
INSERT INTO pipeline_runs (
    run_id, execution_id, watermark_from, watermark_to, n_objects,
    events_loaded, sessions_loaded, visitors_replaced, loaded_at,
    events_arrived, state_rows_read, state_bytes_read, index_rows_read, frozen_rows_read, state_rows_written,
    thawed_slices
)
VALUES (
    :run_id, :execution_id, :watermark_from, :watermark_to, :n_objects,
    :events_loaded, :sessions_loaded, :visitors_replaced, :loaded_at,
    :events_arrived, :state_rows_read, :state_bytes_read, :index_rows_read, :frozen_rows_read, :state_rows_written,
    :thawed_slices
)
ON CONFLICT (run_id) DO UPDATE SET
    execution_id = excluded.execution_id,
    watermark_from = excluded.watermark_from,
    watermark_to = excluded.watermark_to,
    n_objects = excluded.n_objects,
    events_loaded = excluded.events_loaded,
    sessions_loaded = excluded.sessions_loaded,
    visitors_replaced = excluded.visitors_replaced,
    events_arrived = excluded.events_arrived,
    state_rows_read = excluded.state_rows_read,
    state_bytes_read = excluded.state_bytes_read,
    index_rows_read = excluded.index_rows_read,
    frozen_rows_read = excluded.frozen_rows_read,
    state_rows_written = excluded.state_rows_written,
    thawed_slices = excluded.thawed_slices
