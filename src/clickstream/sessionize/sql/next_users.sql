-- The users links of the touched slices' frozen parts after the run: the old ones (not of a thawed slice,
-- :thawed_slices) merged with those of the kept rows that froze now.
CREATE TEMP TABLE next_users AS
SELECT anonymous_id, user_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen, _slice
FROM (
    SELECT anonymous_id, user_id, first_seen, last_seen, _slice
    FROM tail_users WHERE NOT list_contains(:thawed_slices::INTEGER[], _slice)
    UNION ALL
    SELECT anonymous_id, user_id, event_ts, event_ts, _slice
    FROM frozen_out WHERE drop_reason IS NULL AND user_id IS NOT NULL
)
GROUP BY anonymous_id, user_id, _slice
