"""TLS over real loopback sockets: verified by default, a CA bundle (argument or SSL_CERT_FILE), an explicit
insecure switch that warns, and plain http:// that never builds a CA-loaded TLS context."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_ci.client import Client, RetryPolicy
from kfp_ci.errors import ConnectError

HEALTHZ = json.dumps({"commit_sha": "x", "tag_name": "2.17.0", "multi_user": False}).encode()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kfp-ci test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "ca.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(HEALTHZ)))
        self.end_headers()
        self.wfile.write(HEALTHZ)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for url in _serve(context):
        yield url, cert


def test_tls_is_verified_by_default(tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "KFP_CI_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    url, _ = tls
    with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED") as err:
        Client(url, retry=RetryPolicy(attempts=1)).server  # noqa: B018
    assert "--ca-bundle" in str(err.value) and err.value.exit_code == 4


def test_a_ca_bundle_argument_or_ssl_cert_file(tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert = tls
    assert Client(url, verify=str(cert)).server.version == "2.17.0"
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert Client(url).server.version == "2.17.0"


def test_insecure_skip_verify_warns_and_connects(tls: tuple[str, Path]) -> None:
    url, _ = tls
    with pytest.warns(UserWarning, match="verification is off"):
        client = Client(url, verify=False)
    assert client.server.version == "2.17.0"


def test_plain_http_loads_no_ca_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    original = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        calls.append(args)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    for url in _serve(None):
        assert Client(url).server.version == "2.17.0"
    assert calls == []
