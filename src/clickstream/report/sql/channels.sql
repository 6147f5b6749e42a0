-- channel_performance over the reporting days, with the money of the tiles: orders and gross revenue in the store
-- currency (:currency) from money_events, so the channels add up to the Orders and Gross revenue tiles.
WITH s AS (
    SELECT * FROM human_sessions WHERE :all_days OR session_date BETWEEN :first AND :last
),
m AS (
    SELECT session_id, count(*) AS orders, sum(amount) AS gross_revenue
    FROM money_events
    WHERE order_copy = 1 AND currency = :currency AND (:all_days OR day BETWEEN :first AND :last)
    GROUP BY session_id
)
SELECT COALESCE(s.channel, 'Unassigned') AS channel,
       count(*) AS sessions,
       count(DISTINCT s.anonymous_id) AS visitors,
       CAST(count(*) FILTER (WHERE s.engaged) AS DOUBLE PRECISION) / count(*) AS engagement_rate,
       CAST(count(*) FILTER (WHERE s.purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
       COALESCE(sum(m.orders), 0) AS orders,
       CAST(COALESCE(sum(m.gross_revenue), 0) AS NUMERIC(18, 2)) AS gross_revenue
FROM s
LEFT JOIN m ON m.session_id = s.session_id
GROUP BY COALESCE(s.channel, 'Unassigned')
ORDER BY sessions DESC, channel
