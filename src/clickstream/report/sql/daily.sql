-- The daily series: daily_kpis of the reporting days (every day when :all_days), money in the store currency.
SELECT day, sessions, visitors, orders, gross_revenue, refunds, net_revenue, aov, conversion_rate, engagement_rate
FROM daily_kpis
WHERE :all_days OR day BETWEEN :first AND :last
ORDER BY day
