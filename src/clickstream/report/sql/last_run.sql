-- The latest pipeline run that loaded the warehouse.
SELECT run_id, execution_id, watermark_to, events_loaded, sessions_loaded, loaded_at
FROM pipeline_runs
ORDER BY watermark_to DESC NULLS LAST, loaded_at DESC
LIMIT 1
