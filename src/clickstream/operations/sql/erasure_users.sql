-- The person's users rows: those of their own devices, and every row of the user id (:user_id), shared devices
-- included (a shared device keeps its other users' rows). Returns a row per row deleted.
DELETE FROM users
WHERE anonymous_id IN (SELECT anonymous_id FROM erased_devices) OR user_id = :user_id
RETURNING 1
