-- 0005 events by day (PostgreSQL): `events` becomes a table partitioned by the UTC day of event_ts.
-- An event's event_ts never changes (it is derived from the event alone), so a recomputed chain never moves a row
-- to another partition; a load still finds a visitor's old rows in every partition (delete by anonymous_id).
-- Partitions are named events_pYYYYMMDD; the loader creates the missing ones for the days it loads, in its own
-- transaction. The primary key must hold the partition key: (event_id, event_ts).
-- Id columns compare bytewise (COLLATE "C"): ids are opaque, and the key indexes cost less to maintain that way.
-- One index (anonymous_id, session_id) serves the loader's delete by visitor and joins to sessions.
-- The views over events are dropped and created again with the same text as 0003/0004.

DROP VIEW top_products;
DROP VIEW product_daily;
DROP VIEW product_events;

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX events_anonymous_id RENAME TO events_unpartitioned_anonymous_id;
ALTER INDEX events_session_id RENAME TO events_unpartitioned_session_id;

CREATE TABLE events (
    app_id VARCHAR,
    event_id VARCHAR COLLATE "C" NOT NULL,
    anonymous_id VARCHAR COLLATE "C" NOT NULL,
    user_id VARCHAR,
    client_session_id VARCHAR,
    event_type VARCHAR NOT NULL,
    event_ts TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ,
    occurred_at TIMESTAMPTZ,
    page_url VARCHAR,
    page_path VARCHAR,
    page_referrer VARCHAR,
    page_title VARCHAR,
    utm_source VARCHAR,
    utm_medium VARCHAR,
    utm_campaign VARCHAR,
    utm_term VARCHAR,
    utm_content VARCHAR,
    channel VARCHAR,
    product_id VARCHAR,
    product_name VARCHAR,
    category VARCHAR,
    price DOUBLE PRECISION,
    quantity INTEGER,
    value DOUBLE PRECISION,
    currency VARCHAR,
    transaction_id VARCHAR,
    items VARCHAR,
    properties VARCHAR,
    user_agent VARCHAR,
    device_type VARCHAR,
    browser VARCHAR,
    os VARCHAR,
    is_bot BOOLEAN,
    is_internal BOOLEAN,
    ip_prefix VARCHAR,
    ts_clamped BOOLEAN,
    payload_hash VARCHAR,
    source_object VARCHAR,
    source_line INTEGER,
    session_id VARCHAR COLLATE "C" NOT NULL,
    PRIMARY KEY (event_id, event_ts)
) PARTITION BY RANGE (event_ts);

CREATE INDEX events_visitor_session ON events (anonymous_id, session_id);

DO $$
DECLARE
    d DATE;
BEGIN
    FOR d IN SELECT DISTINCT CAST(event_ts AT TIME ZONE 'UTC' AS DATE) FROM events_unpartitioned LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            'events_p' || to_char(d, 'YYYYMMDD'), d::TEXT || ' 00:00:00+00', (d + 1)::TEXT || ' 00:00:00+00'
        );
    END LOOP;
END
$$;

INSERT INTO events SELECT * FROM events_unpartitioned;
DROP TABLE events_unpartitioned;

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
