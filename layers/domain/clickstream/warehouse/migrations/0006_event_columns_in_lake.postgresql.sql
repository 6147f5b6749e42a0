-- 0006 event columns left in the lake (PostgreSQL): `events` keeps what an event says the shopper did (identity,
-- time, page, product and order, properties, session); request metadata, lineage and the attributes every session
-- row already carries stay in the lake's Parquet (Athena's validated_events). See WAREHOUSE_EVENT_COLUMNS in
-- clickstream.core.schema. No view reads these columns. Dropping a column only marks it dropped (no rewrite).

ALTER TABLE events
    DROP COLUMN client_session_id,
    DROP COLUMN received_at,
    DROP COLUMN occurred_at,
    DROP COLUMN page_referrer,
    DROP COLUMN utm_source,
    DROP COLUMN utm_medium,
    DROP COLUMN utm_campaign,
    DROP COLUMN utm_term,
    DROP COLUMN utm_content,
    DROP COLUMN channel,
    DROP COLUMN user_agent,
    DROP COLUMN device_type,
    DROP COLUMN browser,
    DROP COLUMN os,
    DROP COLUMN is_bot,
    DROP COLUMN is_internal,
    DROP COLUMN ip_prefix,
    DROP COLUMN ts_clamped,
    DROP COLUMN payload_hash,
    DROP COLUMN source_object,
    DROP COLUMN source_line;
