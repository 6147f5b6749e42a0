"""Validate and enrich: raw Firehose objects -> validated Parquet, quarantine JSON lines, a ledger row.

Modules: ``models`` (per-event schema), ``reader`` (raw objects), ``judge`` (quarantine reasons and in-object
dedupe), ``enrich`` (rows), ``useragent`` / ``channel`` / ``web`` (derivations), ``writer`` (Parquet via DuckDB,
quarantine JSON lines), ``service`` (the step: outputs and ledger), ``notifications`` (S3 events from SQS).
"""
