-- The daily_revenue rows (every currency) of the days being recomputed (:days).
DELETE FROM daily_revenue WHERE day IN (:days)
