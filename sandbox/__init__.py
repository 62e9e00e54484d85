"""Local stand-ins of the vendor APIs solarsync reads: real loopback HTTP servers with
deterministic (seeded) data, ground truth and fault switches, for tests, demos and benchmarks.

Run one in the foreground: ``python -m sandbox solarknock --port 8765 --api-key sk_DEMO``.

``sandbox.common`` holds what all four build on: ``server`` (the loopback HTTP server, request
handler plumbing, ``/__admin``, a listener thread), ``sandbox`` (lifecycle and request log),
``tls`` (self-signed certificates) and ``foreground`` (``python -m sandbox <api>``). Each API's
package keeps only its routes, auth, data and faults.
"""
