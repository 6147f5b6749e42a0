-- The purchase funnel over the reporting days (funnel_daily summed).
SELECT COALESCE(sum(viewed_item), 0) AS viewed_item,
       COALESCE(sum(added_to_cart), 0) AS added_to_cart,
       COALESCE(sum(began_checkout), 0) AS began_checkout,
       COALESCE(sum(purchased), 0) AS purchased
FROM funnel_daily
WHERE :all_days OR day BETWEEN :first AND :last
