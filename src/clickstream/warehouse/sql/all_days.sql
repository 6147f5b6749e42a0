-- Every day that has sessions or a KPI row (a full recompute's scope).
SELECT session_date FROM sessions UNION SELECT day FROM daily_kpis
