-- 0004 product views over product_events. One SQL text for DuckDB and PostgreSQL.
-- views = view_item events, carts = add_to_cart events, purchases = sessions that bought the product,
-- units and revenue = purchased quantity and price x quantity.

CREATE VIEW product_daily AS
SELECT
    day,
    product_id,
    max(product_name) AS product_name,
    max(category) AS category,
    count(*) FILTER (WHERE event_type = 'view_item') AS views,
    count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
    count(DISTINCT session_id) FILTER (WHERE event_type = 'purchase') AS purchases,
    COALESCE(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0) AS units,
    COALESCE(sum(price * quantity) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
FROM product_events
WHERE product_id IS NOT NULL
GROUP BY day, product_id;

CREATE VIEW top_products AS
SELECT
    product_id,
    max(product_name) AS product_name,
    max(category) AS category,
    sum(views) AS views,
    sum(carts) AS carts,
    sum(purchases) AS purchases,
    sum(units) AS units,
    sum(revenue) AS revenue,
    CAST(sum(carts) AS DOUBLE PRECISION) / NULLIF(sum(views), 0) AS cart_rate
FROM product_daily
GROUP BY product_id;
