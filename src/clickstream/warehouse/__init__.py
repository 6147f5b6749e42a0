"""The warehouse: one SQL model on DuckDB (embedded default) and PostgreSQL (production).

``migrate`` applies the versioned SQL in ``migrations/``, ``loader`` replaces recomputed visitors atomically,
``kpis`` recomputes daily KPIs (``sql/``), ``snapshot`` digests tables. Connections come from
``clickstream.adapters.warehouse``, which imports duckdb or psycopg only when a connection opens.
"""
