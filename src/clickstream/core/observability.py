"""Shared Powertools logger, metrics and tracer: one instance each, imported by handlers and domain code."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "clickstream"
NAMESPACE = "Clickstream"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def get_tracer():  # pragma: no cover - trivial factory, imported lazily so cold starts stay small
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)
