-- The days of the sessions the affected visitors had before this load (their KPIs are recomputed too).
SELECT DISTINCT session_date FROM sessions WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)
