-- The daily_kpis rows of the days being recomputed (:days).
DELETE FROM daily_kpis WHERE day IN (:days)
