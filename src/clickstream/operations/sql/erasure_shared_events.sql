-- The events the shared devices keep, deleted to be loaded again with their recomputed sessions.
DELETE FROM events WHERE anonymous_id IN (SELECT anonymous_id FROM recomputed_devices)
