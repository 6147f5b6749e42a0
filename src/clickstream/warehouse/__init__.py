"""The warehouse: one SQL model on DuckDB (embedded default) and PostgreSQL (production).

``engine`` opens a connection chosen by URL (or a Secrets Manager secret), ``migrate`` applies the versioned SQL
in ``migrations/``, ``loader`` replaces recomputed visitors atomically, ``kpis`` recomputes daily KPIs.
Nothing here imports duckdb or psycopg at import time: the engine modules import them when a connection opens.
"""
