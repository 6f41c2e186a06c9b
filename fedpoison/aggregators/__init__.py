"""Robust aggregation rules: pure torch functions on an (n, d) update matrix."""
