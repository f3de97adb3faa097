"""minikafka benchmark suite: run ``python benchmarks/run.py`` (see README.md).

Benchmark-only code; nothing in minikafka imports it.
"""
