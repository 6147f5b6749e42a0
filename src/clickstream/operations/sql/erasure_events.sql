-- The erased events (operations.erasure_scope): every event of the person's own devices, every event carrying
-- the user id (:user_id, null when a device is forgotten), and the anonymous events of the sessions the user signed
-- into on shared devices. Returns a row per event deleted.
DELETE FROM events
WHERE anonymous_id IN (SELECT anonymous_id FROM erased_devices)
   OR user_id = :user_id
   OR (user_id IS NULL AND (anonymous_id, event_id) IN (SELECT anonymous_id, event_id FROM erased_events))
RETURNING 1
