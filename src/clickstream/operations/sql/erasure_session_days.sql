-- The days of the sessions of the devices an erasure touches (its own devices, and the shared ones whose sessions
-- are recomputed): their daily KPIs are recomputed. Warehouse SQL over the erasure's temp tables.
SELECT DISTINCT session_date FROM sessions
WHERE anonymous_id IN (SELECT anonymous_id FROM erased_devices)
   OR anonymous_id IN (SELECT anonymous_id FROM recomputed_devices)
