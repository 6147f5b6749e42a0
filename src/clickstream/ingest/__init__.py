"""Ingest stage: the native event API (envelope checks, identity, raw records to Firehose)."""
