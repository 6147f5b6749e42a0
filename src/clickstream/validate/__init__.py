"""Validate and enrich: raw Firehose objects -> validated Parquet, quarantine JSON lines, a ledger row.

Modules: ``step`` (the validate step: outputs and ledger), ``notifications`` (S3 events from SQS), ``keys`` (an
object's arrival hour), and the algorithms: ``models`` (per-event schema), ``reader`` (raw objects), ``judge``
(quarantine reasons and in-object dedupe, the specification), ``engine`` / ``sql`` (the same judgement set-based in
DuckDB), ``enrich`` (rows), ``useragent`` / ``channel`` / ``web`` (derivations), ``writer`` (Parquet via DuckDB,
quarantine JSON lines).
"""
