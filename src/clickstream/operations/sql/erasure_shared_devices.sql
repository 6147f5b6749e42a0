-- The devices of the user being erased (:user_id) that also carried another user id: kept, their other users'
-- events with them (operations.erasure_scope). Runs on the erasure's DuckDB over `seen`: the rows of the user's
-- devices in every place (anonymous_id, user_id, session_id, event_id).
SELECT anonymous_id
FROM seen
GROUP BY anonymous_id
HAVING bool_or(user_id IS NOT NULL AND user_id <> :user_id)
