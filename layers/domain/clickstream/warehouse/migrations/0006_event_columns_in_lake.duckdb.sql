-- 0006 event columns left in the lake (DuckDB): the same columns as on PostgreSQL (see the .postgresql.sql file).
-- DuckDB cannot drop a column that an index follows, so `events` is rebuilt with the kept columns and its indexes.

DROP INDEX events_anonymous_id;
DROP INDEX events_session_id;

CREATE TABLE events_kept (
    app_id VARCHAR,
    event_id VARCHAR NOT NULL,
    anonymous_id VARCHAR NOT NULL,
    user_id VARCHAR,
    event_type VARCHAR NOT NULL,
    event_ts TIMESTAMPTZ NOT NULL,
    page_url VARCHAR,
    page_path VARCHAR,
    page_title VARCHAR,
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
    session_id VARCHAR NOT NULL,
    PRIMARY KEY (event_id)
);

INSERT INTO events_kept
SELECT app_id, event_id, anonymous_id, user_id, event_type, event_ts, page_url, page_path, page_title, product_id,
    product_name, category, price, quantity, value, currency, transaction_id, items, properties, session_id
FROM events;
DROP TABLE events;
ALTER TABLE events_kept RENAME TO events;

CREATE INDEX events_anonymous_id ON events (anonymous_id);
CREATE INDEX events_session_id ON events (session_id);
