-- The rows of daily_revenue: the view revenue_by_currency (migration 0007: orders, gross revenue, refunds, net
-- revenue and AOV per day and currency, from money_events) on the days being recomputed.
-- Parameters: :all_days (every day) or :days (the days to select).
SELECT day, currency, orders, gross_revenue, refunds, net_revenue, aov
FROM revenue_by_currency
WHERE :all_days OR day IN (:days)
