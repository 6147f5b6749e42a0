-- What each run read and wrote: the events that arrived in its window, the bucket-state rows and bytes its
-- Sessionize tasks read (hot rows and tails; the frozen-id and object indexes; frozen rows a thaw or a copy of a
-- frozen event needed), the state rows they wrote, and the slices whose frozen history they rewrote.
ALTER TABLE pipeline_runs ADD COLUMN events_arrived BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN state_rows_read BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN state_bytes_read BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN index_rows_read BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN frozen_rows_read BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN state_rows_written BIGINT;
ALTER TABLE pipeline_runs ADD COLUMN thawed_slices INTEGER;
