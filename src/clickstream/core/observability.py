"""Shared Powertools logger and metrics: one instance each, imported by handlers and domain code."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "clickstream"
NAMESPACE = "Clickstream"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
