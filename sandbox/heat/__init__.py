"""HEAT Cloud Public API sandbox (reference: shared/apis/heat.md).

``HeatSandbox`` serves seeded sites on 127.0.0.1 (stdlib ``ThreadingHTTPServer``) with the
documented list/detail payloads, ``/health`` and the error body, and lets tests (or another
process through ``/__admin``) change schedules, clear them, take sites offline or out of the
list, add asset kinds and fields, take ``/health`` down and revoke the key.
Modules: ``data`` (seeded generator), ``server`` (routes, auth, faults, error body),
``sandbox`` (the public class), on ``sandbox.common``. Standalone: ``python -m sandbox.heat --port 8766 --api-key agk_demo.ags_secret``.
"""

from sandbox.heat.data import ASSET_KINDS, SCHEDULE_TYPES
from sandbox.heat.sandbox import HeatSandbox, RequestInfo

__all__ = ["ASSET_KINDS", "SCHEDULE_TYPES", "HeatSandbox", "RequestInfo"]
