"""Helpers of ``bench/serve_bench.py``: model and request bodies, server processes, wrk, report."""
