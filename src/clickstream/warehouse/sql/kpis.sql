-- The KPI definitions (warehouse.kpis), one query for daily_kpis and for the report's totals. Both groupings are
-- computed, per day and over all selected days, and :by_day picks which come out (the totals' row exists even
-- when no session is selected). Sessions are human ones (bots and internal traffic excluded), on the day of their
-- start in the site's time zone; money counts in the store currency (:currency) only.
-- Parameters: :currency, :all_days (every day) or :days (the days to select), :by_day.
WITH s AS (
    SELECT session_id, session_date, anonymous_id, user_id, engaged, purchased, duration_s, n_page_views,
           CASE WHEN COALESCE(currency, :currency) = :currency THEN COALESCE(revenue, 0) ELSE 0 END AS revenue
    FROM human_sessions
    WHERE :all_days OR session_date IN (:days)
),
o AS (
    SELECT s.session_date AS day, GROUPING(s.session_date) AS totals,
           count(DISTINCT e.transaction_id) AS orders
    FROM events e
    JOIN s ON s.anonymous_id = e.anonymous_id AND s.session_id = e.session_id
    WHERE e.event_type = 'purchase' AND e.transaction_id IS NOT NULL AND COALESCE(e.currency, :currency) = :currency
    GROUP BY GROUPING SETS ((s.session_date), ())
),
k AS (
    SELECT
        s.session_date AS day,
        GROUPING(s.session_date) AS totals,
        count(*) AS sessions,
        count(DISTINCT s.anonymous_id) AS visitors,
        count(DISTINCT s.user_id) AS signed_in_users,
        count(*) FILTER (WHERE s.engaged) AS engaged_sessions,
        count(*) FILTER (WHERE s.purchased) AS converted_sessions,
        avg(s.duration_s) AS avg_session_duration_s,
        CAST(COALESCE(sum(s.n_page_views), 0) AS DOUBLE PRECISION) / NULLIF(count(*), 0) AS pages_per_session,
        CAST(COALESCE(sum(s.revenue), 0) AS NUMERIC(18, 2)) AS revenue
    FROM s
    GROUP BY GROUPING SETS ((s.session_date), ())
)
SELECT
    k.day,
    k.sessions,
    k.visitors,
    k.signed_in_users,
    k.engaged_sessions,
    k.converted_sessions,
    CAST(k.engaged_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS engagement_rate,
    1 - CAST(k.engaged_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS bounce_rate,
    k.avg_session_duration_s,
    k.pages_per_session,
    CAST(k.converted_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS conversion_rate,
    COALESCE(o.orders, 0) AS orders,
    k.revenue,
    CAST(k.revenue / NULLIF(COALESCE(o.orders, 0), 0) AS NUMERIC(18, 2)) AS aov,
    CAST(:currency AS VARCHAR) AS currency
FROM k
LEFT JOIN o ON o.totals = k.totals AND o.day IS NOT DISTINCT FROM k.day
WHERE k.totals = CASE WHEN :by_day THEN 0 ELSE 1 END
