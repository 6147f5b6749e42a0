"""Clickstream Analytics & Sessionization: the domain package shared by every Lambda and the local runner."""

__version__ = "0.1.0"
