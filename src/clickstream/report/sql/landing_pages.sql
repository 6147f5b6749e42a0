-- landing_pages over the reporting days: the top entrances, with gross revenue in the store currency as in
-- channels.sql.
WITH s AS (
    SELECT * FROM human_sessions WHERE :all_days OR session_date BETWEEN :first AND :last
),
m AS (
    SELECT session_id, sum(amount) AS gross_revenue
    FROM money_events
    WHERE order_copy = 1 AND currency = :currency AND (:all_days OR day BETWEEN :first AND :last)
    GROUP BY session_id
)
SELECT COALESCE(s.landing_page, '(not set)') AS landing_page,
       count(*) AS entrances,
       CAST(count(*) FILTER (WHERE NOT s.engaged) AS DOUBLE PRECISION) / count(*) AS bounce_rate,
       CAST(count(*) FILTER (WHERE s.purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
       CAST(COALESCE(sum(m.gross_revenue), 0) AS NUMERIC(18, 2)) AS gross_revenue
FROM s
LEFT JOIN m ON m.session_id = s.session_id
GROUP BY COALESCE(s.landing_page, '(not set)')
ORDER BY entrances DESC, landing_page
LIMIT :top
