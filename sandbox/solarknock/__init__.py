"""SolarKnock Reporting API sandbox (reference: shared/apis/solarknock.md).

``SolarKnockSandbox`` serves deterministic, seeded data on 127.0.0.1 (stdlib
``ThreadingHTTPServer``, HTTP/1.1 keep-alive, Content-Length on every response) with the real
API's paging, filters, errors and rate-limit headers, and exposes ground truth, mutations,
faults and a request log so tests can compare a warehouse with the server after adversarial
runs::

    with SolarKnockSandbox(seed=0, api_key="sk_TESTKEY", counts={"knocks": 500}) as sb:
        sb.base_url                 # http://127.0.0.1:<port>/api/v1/reporting
        sb.update("knocks", n=3); sb.fail_next(2, endpoint="leads"); sb.set_rate_limit(60)
        ...                         # run the pipeline against sb.base_url
        assert warehouse_rows == sb.truth("knocks")

Modules: ``data`` (seeded generator, attachment bytes), ``pools`` (values), ``store``
(sorted in-memory tables, paging, late visibility, mutations), ``params`` (query validation,
cursors), ``ratelimit`` (fixed windows + sliding burst cap), ``server`` (routes, auth,
faults, envelopes), ``sandbox`` (the public class); the HTTP plumbing, lifecycle, request log
and ``/__admin`` are ``sandbox.common``'s. ``orgs``: several orgs behind one server, each
key scoped to its own org (``SolarKnockOrgs``). Run standalone: ``python -m sandbox solarknock``.
"""

from sandbox.solarknock.data import (
    DEFAULT_COUNTS,
    ENDPOINTS,
    KEY_FIELDS,
    attachment_bytes,
    attachment_sha256,
)
from sandbox.solarknock.orgs import SolarKnockOrgs
from sandbox.solarknock.sandbox import RequestInfo, SolarKnockSandbox

__all__ = [
    "DEFAULT_COUNTS",
    "ENDPOINTS",
    "KEY_FIELDS",
    "RequestInfo",
    "SolarKnockOrgs",
    "SolarKnockSandbox",
    "attachment_bytes",
    "attachment_sha256",
]
