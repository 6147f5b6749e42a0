-- 0002 analyst views. One SQL text for DuckDB and PostgreSQL.
-- Every view counts human traffic only: bot and internal sessions stay in the tables, flagged, and are left out here.
-- Funnel steps are "open": each step counts the sessions that did it, so conversion here equals daily_kpis'.
-- Revenue in these views is summed as recorded per session; daily_kpis and revenue_by_currency split currencies.

CREATE VIEW human_sessions AS
SELECT *
FROM sessions
WHERE NOT COALESCE(is_bot, FALSE) AND NOT COALESCE(is_internal, FALSE);

CREATE VIEW funnel_daily AS
SELECT
    session_date AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE viewed_item) AS viewed_item,
    count(*) FILTER (WHERE added_to_cart) AS added_to_cart,
    count(*) FILTER (WHERE began_checkout) AS began_checkout,
    count(*) FILTER (WHERE purchased) AS purchased,
    CAST(count(*) FILTER (WHERE added_to_cart) AS DOUBLE PRECISION)
        / NULLIF(count(*) FILTER (WHERE viewed_item), 0) AS view_to_cart_rate,
    CAST(count(*) FILTER (WHERE began_checkout) AS DOUBLE PRECISION)
        / NULLIF(count(*) FILTER (WHERE added_to_cart), 0) AS cart_to_checkout_rate,
    CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION)
        / NULLIF(count(*) FILTER (WHERE began_checkout), 0) AS checkout_to_purchase_rate,
    CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate
FROM human_sessions
GROUP BY session_date;

CREATE VIEW channel_performance AS
SELECT
    COALESCE(channel, 'Unassigned') AS channel,
    count(*) AS sessions,
    count(DISTINCT anonymous_id) AS visitors,
    count(*) FILTER (WHERE engaged) AS engaged_sessions,
    CAST(count(*) FILTER (WHERE engaged) AS DOUBLE PRECISION) / count(*) AS engagement_rate,
    1 - CAST(count(*) FILTER (WHERE engaged) AS DOUBLE PRECISION) / count(*) AS bounce_rate,
    count(*) FILTER (WHERE purchased) AS converted_sessions,
    CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
    COALESCE(sum(orders), 0) AS orders,
    COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
GROUP BY COALESCE(channel, 'Unassigned');

CREATE VIEW device_breakdown AS
SELECT
    COALESCE(device_type, 'unknown') AS device_type,
    count(*) AS sessions,
    count(DISTINCT anonymous_id) AS visitors,
    CAST(count(*) FILTER (WHERE engaged) AS DOUBLE PRECISION) / count(*) AS engagement_rate,
    CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
    avg(duration_s) AS avg_session_duration_s,
    COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
GROUP BY COALESCE(device_type, 'unknown');

CREATE VIEW landing_pages AS
SELECT
    COALESCE(landing_page, '(not set)') AS landing_page,
    count(*) AS entrances,
    count(DISTINCT anonymous_id) AS visitors,
    CAST(count(*) FILTER (WHERE NOT engaged) AS DOUBLE PRECISION) / count(*) AS bounce_rate,
    CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
    COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
GROUP BY COALESCE(landing_page, '(not set)');

CREATE VIEW revenue_by_currency AS
SELECT
    session_date AS day,
    currency,
    count(*) FILTER (WHERE purchased) AS converted_sessions,
    COALESCE(sum(orders), 0) AS orders,
    COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
WHERE currency IS NOT NULL
GROUP BY session_date, currency;

-- Weekly cohorts by the week (Monday) of a visitor's first session; week_offset 0 is the cohort's own week.
CREATE VIEW retention_weekly AS
WITH weeks AS (
    SELECT DISTINCT anonymous_id, CAST(date_trunc('week', CAST(session_date AS TIMESTAMP)) AS DATE) AS active_week
    FROM human_sessions
),
cohorts AS (
    SELECT anonymous_id, min(active_week) AS cohort_week
    FROM weeks
    GROUP BY anonymous_id
),
sizes AS (
    SELECT cohort_week, count(*) AS cohort_size
    FROM cohorts
    GROUP BY cohort_week
),
offsets AS (
    SELECT c.cohort_week, CAST((w.active_week - c.cohort_week) / 7 AS INTEGER) AS week_offset, w.anonymous_id
    FROM cohorts c
    JOIN weeks w ON w.anonymous_id = c.anonymous_id
)
SELECT
    o.cohort_week,
    o.week_offset,
    s.cohort_size,
    count(*) AS visitors,
    CAST(count(*) AS DOUBLE PRECISION) / s.cohort_size AS retention_rate
FROM offsets o
JOIN sizes s ON s.cohort_week = o.cohort_week
GROUP BY o.cohort_week, o.week_offset, s.cohort_size;
