-- The tails of the touched slices after the run: the old tail (not of a thawed slice, :thawed_slices) continued by
-- what froze now (frozen_out's kept rows come after every older frozen row in the rule's order), per visitor: the
-- last kept event, the start of the last session, the latest campaign (utm source, medium, campaign).
CREATE TEMP TABLE next_tail AS
WITH fresh AS (
    SELECT anonymous_id, _slice,
           max(event_ts) AS last_ts,
           last(event_id ORDER BY event_ts, event_id) AS last_event_id,
           max(session_start) AS last_start,
           last(_campaign ORDER BY event_ts, event_id) FILTER (WHERE _campaign IS NOT NULL) AS last_campaign
    FROM (
        SELECT *, CASE WHEN coalesce(utm_source, utm_medium, utm_campaign) IS NOT NULL
                       THEN [utm_source, utm_medium, utm_campaign] END AS _campaign
        FROM frozen_out WHERE drop_reason IS NULL
    )
    GROUP BY anonymous_id, _slice
),
old AS (
    SELECT * FROM tail WHERE NOT list_contains(:thawed_slices::INTEGER[], _slice)
)
SELECT coalesce(n.anonymous_id, o.anonymous_id) AS anonymous_id,
       CASE WHEN n.anonymous_id IS NULL THEN o.last_ts ELSE n.last_ts END AS last_ts,
       CASE WHEN n.anonymous_id IS NULL THEN o.last_event_id ELSE n.last_event_id END AS last_event_id,
       CASE WHEN n.anonymous_id IS NULL THEN o.last_start ELSE n.last_start END AS last_start,
       coalesce(n.last_campaign, o.last_campaign) AS last_campaign,
       coalesce(n._slice, o._slice) AS _slice
FROM old o
FULL OUTER JOIN fresh n ON o.anonymous_id = n.anonymous_id AND o._slice = n._slice
