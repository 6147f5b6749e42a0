-- The days of the sessions this load replaces (their KPIs are recomputed too).
SELECT DISTINCT session_date FROM stage_replaced
