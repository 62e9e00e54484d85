"""Certificate pinning: trust on first use, a configured fingerprint, a changed certificate.
The password must never reach a server whose certificate is not the pinned one."""

from __future__ import annotations

import pytest

from sources.common.tls import PinnedAdapter, normalize_fingerprint, peer_fingerprint, pretty
from tests.sources.tesla.conftest import read_store


def test_changed_certificate_is_refused_before_anything_is_sent(gateway, run, isolated_dlt):
    assert run().ok
    old = gateway.cert.sha256
    gateway.replace_certificate()  # same host and port, another certificate
    gateway.seen.clear()
    result = run()
    assert not result.ok and result.exit_code == 77
    assert f"pinned SHA-256 {old}" in result.error
    assert f"presented {gateway.cert.sha256}" in result.error
    assert "'home'" in result.error and "delete" in result.error
    assert gateway.seen == []  # not one HTTP request: no cookie, no password
    # the recorded fingerprint is kept (the user decides)
    assert read_store(isolated_dlt)["fingerprint"] == normalize_fingerprint(old)


def test_certificate_changing_under_a_running_poll_is_refused(gateway, run):
    """A long-running poll pinned at start: the adapter itself refuses the new certificate."""
    assert run().ok
    gateway.replace_certificate()
    gateway.seen.clear()
    result = run(new_process=False)
    assert not result.ok and result.exit_code == 77
    assert "certificate of gateway 'home' changed" in result.error
    assert gateway.seen == []


def test_configured_fingerprint_mismatch_refused_without_login(gateway, run, monkeypatch):
    monkeypatch.setenv("SOURCES__TESLA__FINGERPRINT", "AB:" * 31 + "AB")
    result = run()
    assert not result.ok and result.exit_code == 77
    assert "changed" in result.error and gateway.cert.sha256 in result.error
    assert gateway.seen == [] and gateway.logins == 0


def test_configured_fingerprint_is_used_and_nothing_recorded(
    gateway, run, monkeypatch, isolated_dlt
):
    monkeypatch.setenv("SOURCES__TESLA__FINGERPRINT", gateway.cert.sha256.lower())
    assert run().ok
    assert "fingerprint" not in read_store(isolated_dlt)  # only the session


def test_malformed_fingerprint_is_a_configuration_error(gateway, run, monkeypatch):
    monkeypatch.setenv("SOURCES__TESLA__FINGERPRINT", "not-a-digest")
    result = run()
    assert not result.ok and result.exit_code == 78
    assert "SHA-256" in result.error and gateway.seen == []


def test_http_host_is_refused(gateway, run, monkeypatch):
    monkeypatch.setenv("SOURCES__TESLA__HOST", "http://" + gateway.host)
    result = run()
    assert not result.ok and result.exit_code == 78 and "HTTPS only" in result.error
    assert gateway.seen == []


def test_pinned_adapter_and_peer_fingerprint(gateway):
    """The shared helper on its own: the pinned adapter talks, a wrong pin refuses."""
    from sources.common import ApiClient, AuthenticationError
    from sources.common.tls import CertificateChangedError

    host, port = gateway.host.split(":")
    seen = peer_fingerprint(host, int(port))
    assert pretty(seen) == gateway.cert.sha256
    ok = ApiClient("t", f"https://{gateway.host}", adapter=PinnedAdapter(
        seen, source="t", what="gw", hint="h"))  # fmt: skip
    with pytest.raises(AuthenticationError):  # the server answered (401: no session)
        ok.get("/api/sitemaster")
    assert gateway.seen[-1].path == "/api/sitemaster"
    wrong = ApiClient(
        "t", f"https://{gateway.host}", max_attempts=3,
        adapter=PinnedAdapter("00" * 32, source="t", what="gw", hint="h"),
    )  # fmt: skip
    before = len(gateway.seen)
    with pytest.raises(CertificateChangedError):
        wrong.get("/api/status")
    assert len(gateway.seen) == before  # refused during the handshake, never retried


def test_a_proxy_in_the_environment_is_not_used_for_the_pinned_gateway(gateway, run, monkeypatch):
    """A proxy pool would not check the fingerprint: the gateway is always reached directly."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    result = run()
    assert result.ok, result.error
    assert gateway.logins == 1
