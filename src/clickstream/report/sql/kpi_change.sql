-- Each KPI tile's change against the previous period of the same length, from the two rows of the KPI query
-- (warehouse/sql/kpis.sql, period 0 = the reporting days, 1 = the days just before them), which report.data puts
-- in front of this statement as the CTE kpi_periods. change = (current - previous) / |previous|: a relative change,
-- for rates too (as GA4 compares periods); null when the previous value is missing or zero.
SELECT
    p.sessions AS sessions_previous,
    (CAST(c.sessions AS DOUBLE PRECISION) - p.sessions) / NULLIF(p.sessions, 0) AS sessions_change,
    p.visitors AS visitors_previous,
    (CAST(c.visitors AS DOUBLE PRECISION) - p.visitors) / NULLIF(p.visitors, 0) AS visitors_change,
    p.engagement_rate AS engagement_rate_previous,
    (c.engagement_rate - p.engagement_rate) / NULLIF(abs(p.engagement_rate), 0) AS engagement_rate_change,
    p.bounce_rate AS bounce_rate_previous,
    (c.bounce_rate - p.bounce_rate) / NULLIF(abs(p.bounce_rate), 0) AS bounce_rate_change,
    p.avg_session_duration_s AS avg_session_duration_s_previous,
    (c.avg_session_duration_s - p.avg_session_duration_s) / NULLIF(abs(p.avg_session_duration_s), 0)
        AS avg_session_duration_s_change,
    p.pages_per_session AS pages_per_session_previous,
    (c.pages_per_session - p.pages_per_session) / NULLIF(abs(p.pages_per_session), 0) AS pages_per_session_change,
    p.conversion_rate AS conversion_rate_previous,
    (c.conversion_rate - p.conversion_rate) / NULLIF(abs(p.conversion_rate), 0) AS conversion_rate_change,
    p.orders AS orders_previous,
    (CAST(c.orders AS DOUBLE PRECISION) - p.orders) / NULLIF(p.orders, 0) AS orders_change,
    p.gross_revenue AS gross_revenue_previous,
    CAST(c.gross_revenue - p.gross_revenue AS DOUBLE PRECISION)
        / NULLIF(abs(CAST(p.gross_revenue AS DOUBLE PRECISION)), 0) AS gross_revenue_change,
    p.refunds AS refunds_previous,
    CAST(c.refunds - p.refunds AS DOUBLE PRECISION)
        / NULLIF(abs(CAST(p.refunds AS DOUBLE PRECISION)), 0) AS refunds_change,
    p.net_revenue AS net_revenue_previous,
    CAST(c.net_revenue - p.net_revenue AS DOUBLE PRECISION)
        / NULLIF(abs(CAST(p.net_revenue AS DOUBLE PRECISION)), 0) AS net_revenue_change,
    p.aov AS aov_previous,
    CAST(c.aov - p.aov AS DOUBLE PRECISION) / NULLIF(abs(CAST(p.aov AS DOUBLE PRECISION)), 0) AS aov_change
FROM kpi_periods c
JOIN kpi_periods p ON c.period = 0 AND p.period = 1
