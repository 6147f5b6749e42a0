-- Rows the sessionizer dropped, over every row file of the bucket states (:files).
SELECT count(*) FILTER (WHERE drop_reason = 'duplicate') AS duplicates,
       count(*) FILTER (WHERE drop_reason = 'duplicate_conflict') AS conflicts
FROM read_parquet(:files, union_by_name = true)
