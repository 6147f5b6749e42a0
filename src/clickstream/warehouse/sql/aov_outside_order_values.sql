-- A check on daily_kpis (the demo's summary runs it): the days whose AOV is not within the range of that day's
-- order values. An order's value is derived here again from the events, apart from revenue.sql: the value of the
-- first purchase event (by event time, then event_id) carrying its transaction id in the day's human sessions, in
-- the row's currency. A mean of those values always lies between their least and greatest, so any row here means
-- revenue or orders were counted wrong (refunds netted into the AOV, a purchase sent twice counted twice, ...).
WITH purchases AS (
    SELECT s.session_date AS day, e.currency, e.transaction_id, e.value,
           row_number() OVER (
               PARTITION BY s.session_date, e.currency, e.transaction_id ORDER BY e.event_ts, e.event_id
           ) AS nth
    FROM events e
    JOIN human_sessions s ON s.anonymous_id = e.anonymous_id AND s.session_id = e.session_id
    WHERE e.event_type = 'purchase' AND e.transaction_id IS NOT NULL
      AND e.value IS NOT NULL AND abs(e.value) < 1e9
),
ranges AS (
    SELECT day, currency, count(*) AS orders, min(value) AS lowest, max(value) AS highest
    FROM purchases
    WHERE nth = 1
    GROUP BY day, currency
)
SELECT k.day, k.currency, k.orders, k.aov, r.orders AS order_count, r.lowest, r.highest
FROM daily_kpis k
LEFT JOIN ranges r ON r.day = k.day AND r.currency = k.currency
WHERE COALESCE(r.orders, 0) <> k.orders
   OR (k.aov IS NULL) <> (r.orders IS NULL)
   OR k.aov < CAST(r.lowest AS NUMERIC(18, 2))
   OR k.aov > CAST(r.highest AS NUMERIC(18, 2))
ORDER BY k.day
