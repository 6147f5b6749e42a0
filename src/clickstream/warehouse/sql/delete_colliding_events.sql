-- Other visitors' events whose event_id this load brings.
DELETE FROM events WHERE event_id IN (SELECT event_id FROM stage_keys)
