"""Benchmarks (run them as scripts or with ``python -m bench.<name>``; see README.md)."""
