"""Simulated store traffic for the demo and the tests."""
