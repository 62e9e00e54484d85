"""Self-signed certificates for the HTTPS sandboxes (SolarAssistant proxy, Tesla gateway).

    cert = SelfSignedCert.create(tmp_dir)            # CN/SAN 127.0.0.1 and localhost
    cert.wrap(httpd)                                  # serve HTTPS on an http.server instance
    cert.sha256                                       # "AB:CD:..." fingerprint, for pinning tests
    os.environ["REQUESTS_CA_BUNDLE"] = str(cert.cert_path)   # how a client trusts it

Nothing here turns verification off: clients trust the certificate or pin its fingerprint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SelfSignedCert:
    cert_path: Path
    key_path: Path
    der: bytes

    @property
    def sha256(self) -> str:
        """Colon-separated upper-case hex, the form browsers and ``openssl x509`` print."""
        digest = hashlib.sha256(self.der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        common_name: str = "127.0.0.1",
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        name: str = "sandbox",
        days: int = 30,
    ) -> SelfSignedCert:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_path = directory / f"{name}.crt"
        key_path = directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(key_path, 0o600)
        return cls(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def wrap(self, httpd: Any) -> None:
        """Make an ``http.server`` instance (not yet serving) speak HTTPS."""
        httpd.socket = self.server_context().wrap_socket(httpd.socket, server_side=True)
