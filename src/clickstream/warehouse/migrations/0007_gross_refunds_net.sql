-- 0007 revenue as analysts define it (GA4, the dbt e-commerce models). One SQL text for DuckDB and PostgreSQL.
-- daily_kpis' `revenue` (purchases minus refunds of the day's sessions, which AOV then divided by the day's orders)
-- becomes gross_revenue (the orders' values), refunds (on the refund's day) and net_revenue (gross - refunds), with
-- AOV = gross_revenue / orders. Money is counted per currency and never summed across currencies:
--   money_events        the money of human sessions (bots and internal traffic excluded): every purchase and refund
--                       with its amount, on the day of its session (site time zone); order_copy numbers the
--                       purchases of one transaction id on a day (1 = the order; a purchase sent again is no new one)
--   revenue_by_currency orders, gross revenue, refunds, net revenue and AOV per day and currency (replaces 0002's
--                       view of the same name, which summed the sessions' net revenue)
--   daily_revenue       that view materialized with daily_kpis (warehouse.kpis refreshes both for the days a load
--                       touched); daily_kpis carries the store currency's row
-- Existing rows are recomputed here from the warehouse's events: a migrated warehouse equals one computed afresh.

CREATE VIEW money_events AS
SELECT
    s.session_date AS day,
    e.session_id,
    e.anonymous_id,
    e.event_id,
    e.event_type,
    e.currency,
    e.transaction_id,
    -- a refund's amount is |value| (trackers differ in its sign); a value of a billion or more is not money a
    -- store takes, so it never reaches these rows (and no single event can overflow NUMERIC(18, 2))
    CAST(CASE WHEN abs(e.value) >= 1e9 THEN NULL WHEN e.event_type = 'refund' THEN abs(e.value) ELSE e.value END
        AS NUMERIC(18, 2)) AS amount,
    CASE WHEN e.event_type = 'purchase' THEN row_number() OVER (
        PARTITION BY s.session_date, e.currency, e.event_type, e.transaction_id,
            CASE WHEN e.transaction_id IS NULL THEN e.event_id END
        ORDER BY e.event_ts, e.event_id
    ) END AS order_copy
FROM events e
JOIN human_sessions s ON s.anonymous_id = e.anonymous_id AND s.session_id = e.session_id
WHERE e.event_type IN ('purchase', 'refund')
  AND e.currency IS NOT NULL
  AND e.value IS NOT NULL
  AND e.value > -1e9 AND e.value < 1e9;

DROP VIEW revenue_by_currency;

-- AOV in cents rounded half away from zero with integer arithmetic, so both engines round alike:
-- (2|c| + n) div 2n with the sign of c, for c = gross revenue in cents and n = orders.
CREATE VIEW revenue_by_currency AS
WITH totals AS (
    SELECT
        day,
        currency,
        count(*) FILTER (WHERE order_copy = 1) AS orders,
        COALESCE(sum(amount) FILTER (WHERE order_copy = 1), 0) AS gross_revenue,
        COALESCE(sum(amount) FILTER (WHERE event_type = 'refund'), 0) AS refunds
    FROM money_events
    GROUP BY day, currency
),
cents AS (
    SELECT *, CAST(gross_revenue * 100 AS BIGINT) AS gross_cents FROM totals
)
SELECT
    day,
    currency,
    orders,
    CAST(gross_revenue AS NUMERIC(18, 2)) AS gross_revenue,
    CAST(refunds AS NUMERIC(18, 2)) AS refunds,
    CAST(gross_revenue - refunds AS NUMERIC(18, 2)) AS net_revenue,
    CASE WHEN orders > 0 THEN CAST(CAST(
        (CASE WHEN gross_cents < 0 THEN -1 ELSE 1 END)
        * CAST(((2 * abs(gross_cents) + orders) - (2 * abs(gross_cents) + orders) % (2 * orders)) / (2 * orders)
            AS BIGINT)
        AS NUMERIC(18, 2)) / 100 AS NUMERIC(18, 2)) END AS aov
FROM cents;

CREATE TABLE daily_revenue (
    day DATE NOT NULL,
    currency VARCHAR NOT NULL,
    orders BIGINT NOT NULL,
    gross_revenue NUMERIC(18, 2) NOT NULL,
    refunds NUMERIC(18, 2) NOT NULL,
    net_revenue NUMERIC(18, 2) NOT NULL,
    aov NUMERIC(18, 2),
    PRIMARY KEY (day, currency)
);

INSERT INTO daily_revenue (day, currency, orders, gross_revenue, refunds, net_revenue, aov)
SELECT day, currency, orders, gross_revenue, refunds, net_revenue, aov
FROM revenue_by_currency
WHERE day IN (SELECT day FROM daily_kpis);

CREATE TEMP TABLE daily_kpis_0006 AS SELECT * FROM daily_kpis;
DROP TABLE daily_kpis;

CREATE TABLE daily_kpis (
    day DATE NOT NULL,
    sessions BIGINT NOT NULL,
    visitors BIGINT NOT NULL,
    signed_in_users BIGINT NOT NULL,
    engaged_sessions BIGINT NOT NULL,
    converted_sessions BIGINT NOT NULL,
    engagement_rate DOUBLE PRECISION,
    bounce_rate DOUBLE PRECISION,
    avg_session_duration_s DOUBLE PRECISION,
    pages_per_session DOUBLE PRECISION,
    conversion_rate DOUBLE PRECISION,
    orders BIGINT NOT NULL,
    gross_revenue NUMERIC(18, 2) NOT NULL,
    refunds NUMERIC(18, 2) NOT NULL,
    net_revenue NUMERIC(18, 2) NOT NULL,
    aov NUMERIC(18, 2),
    currency VARCHAR NOT NULL,
    PRIMARY KEY (day)
);

INSERT INTO daily_kpis
SELECT
    k.day, k.sessions, k.visitors, k.signed_in_users, k.engaged_sessions, k.converted_sessions, k.engagement_rate,
    k.bounce_rate, k.avg_session_duration_s, k.pages_per_session, k.conversion_rate,
    COALESCE(r.orders, 0), COALESCE(r.gross_revenue, 0), COALESCE(r.refunds, 0), COALESCE(r.net_revenue, 0), r.aov,
    k.currency
FROM daily_kpis_0006 k
LEFT JOIN daily_revenue r ON r.day = k.day AND r.currency = k.currency;

DROP TABLE daily_kpis_0006;
