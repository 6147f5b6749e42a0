"""Benchmarks: each prints a ratio against a named peer measured in the same run. Not part of the test run."""
