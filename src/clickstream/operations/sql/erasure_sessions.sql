-- The sessions of the person's own devices, and every session of the shared devices (recomputed from the events
-- they keep and loaded again). Returns a row per session deleted.
DELETE FROM sessions
WHERE anonymous_id IN (SELECT anonymous_id FROM erased_devices)
   OR anonymous_id IN (SELECT anonymous_id FROM recomputed_devices)
RETURNING 1
