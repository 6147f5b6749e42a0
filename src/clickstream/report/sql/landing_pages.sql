-- landing_pages over the reporting days: the top entrances.
SELECT COALESCE(landing_page, '(not set)') AS landing_page,
       count(*) AS entrances,
       CAST(count(*) FILTER (WHERE NOT engaged) AS DOUBLE PRECISION) / count(*) AS bounce_rate,
       CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
       COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
WHERE :all_days OR session_date BETWEEN :first AND :last
GROUP BY COALESCE(landing_page, '(not set)')
ORDER BY entrances DESC, landing_page
LIMIT :top
