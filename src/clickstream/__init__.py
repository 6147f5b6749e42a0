"""Clickstream Analytics & Sessionization: the product, everything a Lambda runs (the DomainLayer) and nothing else."""

__version__ = "0.1.0"
