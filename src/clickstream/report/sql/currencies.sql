-- The currencies with money (daily_revenue) in the reporting days, store currency first; the page shows revenue
-- per currency when there is more than one (warehouse.kpis gives each its totals).
SELECT currency
FROM daily_revenue
WHERE :all_days OR day BETWEEN :first AND :last
GROUP BY currency
ORDER BY CASE WHEN currency = :currency THEN 0 ELSE 1 END, currency
