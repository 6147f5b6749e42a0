-- The days of other visitors' sessions whose session_id this load brings (replaced by key).
SELECT DISTINCT session_date FROM sessions WHERE session_id IN (SELECT session_id FROM stage_session_keys)
