"""Pieces every stage shares: configuration, clock, errors, schemas, key naming, bucketing, observability."""
