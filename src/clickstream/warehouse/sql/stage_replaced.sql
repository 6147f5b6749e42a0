-- The sessions this load replaces: the affected visitors' sessions from their replace_from on (null: all of them).
-- Sessions before it are frozen history the run did not recompute; they stay, with their events.
-- n_events: what the loader estimates a day's replaced events from (PostgreSQL: rebuild the day or delete).
CREATE TEMP TABLE stage_replaced AS
SELECT s.session_id, s.anonymous_id, s.session_start, s.session_end, s.session_date, s.n_events
FROM sessions s
JOIN stage_affected a ON a.anonymous_id = s.anonymous_id
WHERE a.replace_from IS NULL OR s.session_start >= a.replace_from
