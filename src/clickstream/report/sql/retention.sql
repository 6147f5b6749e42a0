-- Weekly retention of the latest :cohorts cohorts (Monday weeks) that started in the reporting range (from the
-- Monday of its first day, :first_week), their first :weeks weeks.
SELECT cohort_week, week_offset, cohort_size, visitors, retention_rate
FROM retention_weekly
WHERE cohort_week IN (
    SELECT cohort_week
    FROM (
        SELECT DISTINCT cohort_week FROM retention_weekly
        WHERE :all_days OR cohort_week BETWEEN :first_week AND :last
    ) c
    ORDER BY cohort_week DESC
    LIMIT :cohorts
)
AND week_offset < :weeks
ORDER BY cohort_week, week_offset
