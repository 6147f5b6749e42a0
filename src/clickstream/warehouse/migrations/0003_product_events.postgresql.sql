-- 0003 product_events (PostgreSQL): one row per item of every product event of human sessions.
-- The only engine-specific SQL of the model: JSON array expansion is spelled differently (jsonb_array_elements
-- here, json_each on DuckDB). Events without an items array fall back to their first-item columns.

CREATE VIEW product_events AS
SELECT
    s.session_date AS day,
    e.session_id,
    e.event_type,
    it.value ->> 'product_id' AS product_id,
    it.value ->> 'name' AS product_name,
    it.value ->> 'category' AS category,
    CAST(it.value ->> 'price' AS DOUBLE PRECISION) AS price,
    COALESCE(CAST(it.value ->> 'quantity' AS INTEGER), 1) AS quantity,
    e.currency
FROM events e
JOIN human_sessions s ON s.session_id = e.session_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(CAST(e.items AS JSONB)) = 'array' THEN CAST(e.items AS JSONB) ELSE '[]'::JSONB END
) AS it(value)
WHERE e.items IS NOT NULL
UNION ALL
SELECT
    s.session_date AS day,
    e.session_id,
    e.event_type,
    e.product_id,
    e.product_name,
    e.category,
    e.price,
    COALESCE(e.quantity, 1) AS quantity,
    e.currency
FROM events e
JOIN human_sessions s ON s.session_id = e.session_id
WHERE (e.items IS NULL OR jsonb_typeof(CAST(e.items AS JSONB)) <> 'array') AND e.product_id IS NOT NULL;
