-- The top products over the reporting days (top_products = product_daily summed), by revenue then views.
SELECT product_id, max(product_name) AS product_name, max(category) AS category, sum(views) AS views,
       sum(carts) AS carts, sum(purchases) AS purchases, sum(units) AS units, sum(revenue) AS revenue
FROM product_daily
WHERE :all_days OR day BETWEEN :first AND :last
GROUP BY product_id
ORDER BY revenue DESC NULLS LAST, views DESC, product_id
LIMIT :top
