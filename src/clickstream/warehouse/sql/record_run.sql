-- The load's row in pipeline_runs. loaded_at keeps the first load's time, so re-loading the same run leaves the
-- table identical.
INSERT INTO pipeline_runs (
    run_id, execution_id, watermark_from, watermark_to, n_objects,
    events_loaded, sessions_loaded, visitors_replaced, loaded_at
)
VALUES (
    :run_id, :execution_id, :watermark_from, :watermark_to, :n_objects,
    :events_loaded, :sessions_loaded, :visitors_replaced, :loaded_at
)
ON CONFLICT (run_id) DO UPDATE SET
    execution_id = excluded.execution_id,
    watermark_from = excluded.watermark_from,
    watermark_to = excluded.watermark_to,
    n_objects = excluded.n_objects,
    events_loaded = excluded.events_loaded,
    sessions_loaded = excluded.sessions_loaded,
    visitors_replaced = excluded.visitors_replaced
