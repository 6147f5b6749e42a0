-- 0001 init: the tables. One SQL text for DuckDB and PostgreSQL.
-- Column names and order follow clickstream.core.schema (EVENT_COLUMNS, SESSION_COLUMNS, USER_COLUMNS);
-- a test compares them, so a column added there must be added by a new migration here.
-- Timestamps are stored in UTC (TIMESTAMPTZ); reporting days are dates in the site's time zone.

-- Every kept event, with the session it belongs to.
CREATE TABLE events (
    app_id VARCHAR,
    event_id VARCHAR NOT NULL,
    anonymous_id VARCHAR NOT NULL,
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
    session_id VARCHAR NOT NULL,
    PRIMARY KEY (event_id)
);

CREATE INDEX events_anonymous_id ON events (anonymous_id);
CREATE INDEX events_session_id ON events (session_id);

-- One row per session; session_date = the day of session_start in the site's time zone.
CREATE TABLE sessions (
    session_id VARCHAR NOT NULL,
    anonymous_id VARCHAR NOT NULL,
    user_id VARCHAR,
    app_id VARCHAR,
    session_start TIMESTAMPTZ NOT NULL,
    session_end TIMESTAMPTZ NOT NULL,
    duration_s DOUBLE PRECISION,
    engaged_time_s DOUBLE PRECISION,
    n_events INTEGER,
    n_page_views INTEGER,
    landing_page VARCHAR,
    exit_page VARCHAR,
    referrer VARCHAR,
    channel VARCHAR,
    utm_source VARCHAR,
    utm_medium VARCHAR,
    utm_campaign VARCHAR,
    utm_term VARCHAR,
    utm_content VARCHAR,
    device_type VARCHAR,
    browser VARCHAR,
    os VARCHAR,
    is_bot BOOLEAN,
    is_internal BOOLEAN,
    engaged BOOLEAN,
    bounce BOOLEAN,
    viewed_item BOOLEAN,
    added_to_cart BOOLEAN,
    began_checkout BOOLEAN,
    purchased BOOLEAN,
    orders INTEGER,
    revenue DOUBLE PRECISION,
    currency VARCHAR,
    session_date DATE NOT NULL,
    PRIMARY KEY (session_id)
);

CREATE INDEX sessions_anonymous_id ON sessions (anonymous_id);
CREATE INDEX sessions_session_date ON sessions (session_date);

-- anonymous_id -> user_id, for counting people across devices.
CREATE TABLE users (
    anonymous_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (anonymous_id, user_id)
);

-- Daily KPIs (definitions in warehouse/kpis.py): bot and internal sessions excluded; revenue in the store currency.
CREATE TABLE daily_kpis (
    day DATE NOT NULL,
    sessions BIGINT NOT NULL,
    visitors BIGINT NOT NULL,
    signed_in_users BIGINT NOT NULL,
    engaged_sessions BIGINT NOT NULL,
    converted_sessions BIGINT NOT NULL,
    engagement_rate DOUBLE PRECISION,
    bounce_rate DOUBLE PRECISION,
    avg_session_duration_s DOUBLE PRECISION,
    pages_per_session DOUBLE PRECISION,
    conversion_rate DOUBLE PRECISION,
    orders BIGINT NOT NULL,
    revenue NUMERIC(18, 2) NOT NULL,
    aov NUMERIC(18, 2),
    currency VARCHAR NOT NULL,
    PRIMARY KEY (day)
);

-- One row per pipeline run that loaded the warehouse (loaded_at = the first load of that run).
CREATE TABLE pipeline_runs (
    run_id VARCHAR NOT NULL,
    execution_id VARCHAR,
    watermark_from TIMESTAMPTZ,
    watermark_to TIMESTAMPTZ,
    n_objects INTEGER,
    events_loaded BIGINT,
    sessions_loaded BIGINT,
    visitors_replaced BIGINT,
    loaded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id)
);
