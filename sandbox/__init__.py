"""Local stand-ins of the vendor APIs solarsync reads: real loopback HTTP servers with
deterministic (seeded) data, ground truth and fault switches, for tests, demos and benchmarks.

Run one in the foreground: ``python -m sandbox solarknock --port 8765 --api-key sk_DEMO``.
"""
