-- On the shared devices, the anonymous events (no user id) of the sessions the user being erased (:user_id)
-- signed into: a session, as stored before the erasure, holding an event with that user id
-- (operations.erasure_scope). Runs on the erasure's DuckDB over `seen`.
WITH shared AS (
    SELECT anonymous_id FROM seen GROUP BY anonymous_id
    HAVING bool_or(user_id IS NOT NULL AND user_id <> :user_id)
),
signed_in AS (
    SELECT DISTINCT anonymous_id, session_id FROM seen
    WHERE user_id = :user_id AND session_id IS NOT NULL
)
SELECT DISTINCT s.anonymous_id, s.event_id
FROM seen s
JOIN shared d ON d.anonymous_id = s.anonymous_id
JOIN signed_in i ON i.anonymous_id = s.anonymous_id AND i.session_id = s.session_id
WHERE s.user_id IS NULL AND s.event_id IS NOT NULL
ORDER BY 1, 2
