"""The programs the harness measures, each run as ``python -m bench.workers.<name>`` in its own
process (never in the harness, which hosts the sandbox)."""
