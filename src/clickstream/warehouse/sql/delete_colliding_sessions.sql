-- Other visitors' sessions whose session_id this load brings.
DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM stage_session_keys)
