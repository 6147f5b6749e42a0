-- The sessions each touched slice's new frozen sessions file holds, as frozen_out does for rows.
CREATE TEMP TABLE frozen_sessions_out AS
SELECT f.* FROM frozen_sessions f
WHERE list_contains(:thawed_slices::INTEGER[], f._slice) AND f.anonymous_id NOT IN (SELECT anonymous_id FROM thawed)
UNION ALL
SELECT * EXCLUDE (_frozen) FROM next_sessions WHERE _frozen
