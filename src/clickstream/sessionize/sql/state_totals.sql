-- Rows the sessionizer dropped, over the bucket states' all.parquet files (:files).
SELECT count(*) FILTER (WHERE drop_reason = 'duplicate') AS duplicates,
       count(*) FILTER (WHERE drop_reason = 'duplicate_conflict') AS conflicts
FROM read_parquet(:files, union_by_name = true)
