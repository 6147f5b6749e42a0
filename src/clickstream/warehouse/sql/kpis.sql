-- The KPI definitions (warehouse.kpis), one query for daily_kpis and for the report's totals.
-- Sessions are human ones (bots and internal traffic excluded), on the day of their start in the site's time zone.
-- Money is the store currency's (:currency) rows of daily_revenue (revenue.sql, refreshed first in the same
-- transaction): over several days orders, gross revenue and refunds are the days' sums, and AOV is their gross
-- revenue / orders, rounded as revenue.sql rounds it.
-- Two periods: 0 = the selected days (:all_days, or :days), 1 = :previous_days (the period a report compares with;
-- empty for daily_kpis). :by_day picks the output: one row per day of period 0, or one row per period over its
-- days (both rows exist even when a period has no session: then its counts are 0 and its averages null).
-- Parameters: :currency, :all_days, :days, :previous_days, :by_day.
WITH p AS (
    SELECT 0 AS period UNION ALL SELECT 1 AS period
),
s AS (
    SELECT session_id, session_date, anonymous_id, user_id, engaged, purchased, duration_s, n_page_views,
           CASE WHEN :all_days OR session_date IN (:days) THEN 0 ELSE 1 END AS period
    FROM human_sessions
    WHERE :all_days OR session_date IN (:days) OR session_date IN (:previous_days)
),
k AS (
    SELECT
        p.period,
        s.session_date AS day,
        GROUPING(s.session_date) AS totals,
        count(s.session_id) AS sessions,
        count(DISTINCT s.anonymous_id) AS visitors,
        count(DISTINCT s.user_id) AS signed_in_users,
        count(s.session_id) FILTER (WHERE s.engaged) AS engaged_sessions,
        count(s.session_id) FILTER (WHERE s.purchased) AS converted_sessions,
        avg(s.duration_s) AS avg_session_duration_s,
        CAST(COALESCE(sum(s.n_page_views), 0) AS DOUBLE PRECISION) / NULLIF(count(s.session_id), 0)
            AS pages_per_session
    FROM p
    LEFT JOIN s ON s.period = p.period
    GROUP BY GROUPING SETS ((p.period, s.session_date), (p.period))
),
r AS (
    SELECT
        CASE WHEN :all_days OR day IN (:days) THEN 0 ELSE 1 END AS period,
        day,
        orders,
        gross_revenue,
        refunds
    FROM daily_revenue
    WHERE currency = :currency AND (:all_days OR day IN (:days) OR day IN (:previous_days))
),
rk AS (
    SELECT period, day, GROUPING(day) AS totals,
           sum(orders) AS orders, sum(gross_revenue) AS gross_revenue, sum(refunds) AS refunds
    FROM r
    GROUP BY GROUPING SETS ((period, day), (period))
),
m AS (
    SELECT k.*,
           COALESCE(rk.orders, 0) AS orders,
           COALESCE(rk.gross_revenue, 0) AS gross_revenue,
           COALESCE(rk.refunds, 0) AS refunds,
           CAST(COALESCE(rk.gross_revenue, 0) * 100 AS BIGINT) AS gross_cents
    FROM k
    LEFT JOIN rk ON rk.period = k.period AND rk.totals = k.totals AND rk.day IS NOT DISTINCT FROM k.day
    WHERE CASE WHEN :by_day THEN k.totals = 0 AND k.period = 0 AND k.day IS NOT NULL ELSE k.totals = 1 END
)
SELECT
    day,
    sessions,
    visitors,
    signed_in_users,
    engaged_sessions,
    converted_sessions,
    CAST(engaged_sessions AS DOUBLE PRECISION) / NULLIF(sessions, 0) AS engagement_rate,
    1 - CAST(engaged_sessions AS DOUBLE PRECISION) / NULLIF(sessions, 0) AS bounce_rate,
    avg_session_duration_s,
    pages_per_session,
    CAST(converted_sessions AS DOUBLE PRECISION) / NULLIF(sessions, 0) AS conversion_rate,
    orders,
    CAST(gross_revenue AS NUMERIC(18, 2)) AS gross_revenue,
    CAST(refunds AS NUMERIC(18, 2)) AS refunds,
    CAST(gross_revenue - refunds AS NUMERIC(18, 2)) AS net_revenue,
    -- integer arithmetic, so both engines round alike (as in revenue.sql)
    CASE WHEN orders > 0 THEN CAST(CAST(
        (CASE WHEN gross_cents < 0 THEN -1 ELSE 1 END)
        * CAST(((2 * abs(gross_cents) + orders) - (2 * abs(gross_cents) + orders) % (2 * orders)) / (2 * orders)
            AS BIGINT)
        AS NUMERIC(18, 2)) / 100 AS NUMERIC(18, 2)) END AS aov,
    CAST(:currency AS VARCHAR) AS currency,
    period
FROM m
