"""SolarAssistant sandbox (references: shared/apis/solarassistant.md and
solarassistant-metrics.md).

``SolarAssistantSandbox`` serves a seeded account on 127.0.0.1: the cloud API over HTTP
(user, sites with extra list fields, site details with owner and organization, members,
organization users with ``offset``/``limit`` paging and a ``limit`` cap, site authorize) and
the cloud proxy over HTTPS with a self-signed certificate (``GET /api/v1/metrics`` checked
against the site token, ``Site-Id`` and ``Site-Key``; ``?topic=`` globs). Sites differ in their
topics and value types (numbers, strings, booleans, null, numeric strings, odd topic names);
sites can be offline (502/504/timeout/dropped connection); site tokens expire (``token_ttl``,
:meth:`~SolarAssistantSandbox.expire_tokens`). Writes other than authorize are refused and
recorded::

    with SolarAssistantSandbox(seed=1, sites=6, offline={...}) as sb:
        sb.base_url, sb.proxy_host, sb.ca_bundle   # REQUESTS_CA_BUNDLE=sb.ca_bundle
        sb.truth("site_members"); sb.metrics_truth(site_id)
        sb.tick(); sb.remove_member(site, user); sb.expire_tokens(); sb.fail("cloud", "/users$", 500)
        sb.set_value(site, "total/pv_energy", 12.5); sb.remove_topic(site, "battery_1/voltage")

Run standalone: ``python -m sandbox.solarassistant``.
"""

from sandbox.solarassistant.sandbox import RequestInfo, SolarAssistantSandbox

__all__ = ["RequestInfo", "SolarAssistantSandbox"]
