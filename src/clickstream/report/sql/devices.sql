-- device_breakdown over the reporting days.
SELECT COALESCE(device_type, 'unknown') AS device_type,
       count(*) AS sessions,
       count(DISTINCT anonymous_id) AS visitors,
       CAST(count(*) FILTER (WHERE engaged) AS DOUBLE PRECISION) / count(*) AS engagement_rate,
       CAST(count(*) FILTER (WHERE purchased) AS DOUBLE PRECISION) / count(*) AS conversion_rate,
       COALESCE(sum(revenue), 0) AS revenue
FROM human_sessions
WHERE :all_days OR session_date BETWEEN :first AND :last
GROUP BY COALESCE(device_type, 'unknown')
ORDER BY sessions DESC, device_type
