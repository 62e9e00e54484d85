"""Certificate pinning for self-signed HTTPS devices on the LAN (e.g. a Tesla gateway).

A pinned connection trusts exactly one certificate, named by its SHA-256 fingerprint, instead
of a CA chain: urllib3 checks the peer certificate against ``assert_fingerprint`` during the
handshake, before a single byte of the request (a password, a cookie) is sent. This is not
``verify=False``: a different certificate fails the handshake.

    fingerprint = peer_fingerprint("192.168.91.1", 443)     # trust on first use: read it once
    adapter = PinnedAdapter(fingerprint, source="tesla", what="gateway home")
    ApiClient("tesla", "https://192.168.91.1", adapter=adapter)
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import SSLError

from sources.common.errors import AuthenticationError, ConfigurationError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MISMATCH = re.compile(r'Fingerprints did not match\. Expected "([0-9a-f]+)", got "([0-9a-f]+)"')


class CertificateChangedError(AuthenticationError):
    """The server presented a certificate other than the pinned one: nothing was sent to it."""

    def __init__(self, message: str, *, expected: str, got: str | None, **kwargs: Any) -> None:
        self.expected = expected
        self.got = got
        super().__init__(message, **kwargs)


def normalize_fingerprint(value: str, *, source: str | None = None) -> str:
    """``"AB:CD:..."``, ``"ab cd ..."`` or ``"abcd..."`` -> 64 lower-case hex digits."""
    text = re.sub(r"[\s:]", "", str(value or "")).lower()
    if text.startswith("sha256="):
        text = text[len("sha256=") :]
    if not _HEX64.match(text):
        raise ConfigurationError(
            "the certificate fingerprint is not a SHA-256 digest (64 hex digits, colons allowed)",
            source=source,
            hint="copy it from `openssl s_client -connect HOST:443 </dev/null | openssl x509 "
            "-noout -fingerprint -sha256`",
        )
    return text


def pretty(fingerprint: str) -> str:
    """``AB:CD:...``: the form ``openssl x509 -fingerprint`` and browsers print."""
    up = fingerprint.upper()
    return ":".join(up[i : i + 2] for i in range(0, len(up), 2))


def certificate_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def peer_fingerprint(host: str, port: int, *, timeout: float = 10.0) -> str:
    """SHA-256 of the certificate the server presents (no trust decision is made here).

    Used for trust on first use: the fingerprint is read over a connection that sends nothing,
    recorded, then every request (the login included) is pinned to it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we read the certificate, we send nothing
    server_hostname = None if _is_ip(host) else host
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return certificate_sha256(der)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class PinnedAdapter(HTTPAdapter):
    """An ``https://`` adapter that accepts exactly the certificate with ``fingerprint``.

    The CA chain and the host name are not consulted (a self-signed device certificate has
    neither); the fingerprint is checked by urllib3 during every handshake. A mismatch raises
    :class:`CertificateChangedError` (never retried) instead of a connection error.
    """

    def __init__(self, fingerprint: str, *, source: str, what: str, hint: str, **kwargs: Any):
        self.fingerprint = normalize_fingerprint(fingerprint, source=source)
        self.source = source
        self.what = what
        self.hint = hint
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["assert_fingerprint"] = self.fingerprint
        super().init_poolmanager(*args, **pool_kwargs)

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        # The pinned fingerprint replaces CA verification (a self-signed device certificate has
        # no chain): the pool is built without a CA context (requests' verify=False ->
        # cert_reqs=CERT_NONE) and with ``assert_fingerprint`` (init_poolmanager), which urllib3
        # checks in every handshake. Never through a proxy: a proxy pool would not carry the
        # fingerprint (and a device on the LAN is reached directly).
        kwargs["verify"] = False
        kwargs["proxies"] = {}
        try:
            return super().send(request, **kwargs)
        except SSLError as exc:
            match = _MISMATCH.search(str(exc))
            if not match:
                raise
            raise certificate_changed(
                self.source, self.what, self.fingerprint, match.group(2), self.hint
            ) from None


def certificate_changed(
    source: str, what: str, expected: str, got: str | None, hint: str
) -> CertificateChangedError:
    seen = pretty(got) if got else "an unreadable certificate"
    return CertificateChangedError(
        f"the certificate of {what} changed: pinned SHA-256 {pretty(expected)}, the server "
        f"presented {seen}; refused, nothing was sent",
        expected=expected,
        got=got,
        source=source,
        hint=hint,
    )


__all__ = [
    "CertificateChangedError",
    "PinnedAdapter",
    "certificate_changed",
    "certificate_sha256",
    "normalize_fingerprint",
    "peer_fingerprint",
    "pretty",
]
