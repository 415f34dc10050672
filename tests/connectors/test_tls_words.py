"""A certificate for another host is reported as such, not as an untrusted CA (#21), by the ldap and HTTP connectors.

The server is a real TLS listener on loopback with a certificate from a throwaway CA; the handshake fails before
any LDAP or HTTP is spoken, so nothing else is needed.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from offboard.errors import PermanentError
from offboard_connectors.ldap import LdapConnector
from offboard_connectors.scim import ScimConnector

try:
    from ._directories import CertificateAuthority
except ImportError:  # tests/connectors is not a package
    from _directories import CertificateAuthority


class TlsServer:
    """Accepts TLS connections with ``cert`` until closed; each handshake's outcome is ignored."""

    def __init__(self, cert: Path, key: Path):
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def other_host(tmp_path) -> Iterator[tuple[TlsServer, CertificateAuthority]]:
    """A server whose certificate, from a CA we trust, is for other.example only."""
    ca = CertificateAuthority(tmp_path / "ca", "test CA")
    server = TlsServer(*ca.issue("other", ["other.example"], []))
    try:
        yield server, ca
    finally:
        server.close()


def ldap(url: str, ca_file: Path, monkeypatch) -> LdapConnector:
    monkeypatch.setenv("TLS_WORDS_PASSWORD", "not-used")
    settings = {
        "url": url,
        "flavor": "openldap",
        "bind_dn": "cn=admin,dc=example,dc=org",
        "password": "env:TLS_WORDS_PASSWORD",
        "base_dn": "dc=example,dc=org",
        "ca_file": str(ca_file),
    }
    return LdapConnector("dir", settings)


def scim(url: str, ca_file: Path) -> ScimConnector:
    return ScimConnector("scim", {"base_url": url, "ca_file": str(ca_file)})


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_ldap_names_a_host_name_mismatch(other_host, host, monkeypatch):
    server, ca = other_host
    url = f"ldaps://{host}:{server.port}"
    with pytest.raises(PermanentError) as info:
        ldap(url, ca.path, monkeypatch).check()
    message = str(info.value)
    assert f"TLS certificate of {url} does not name the host {host} (it is for other.example)" in message
    assert "not trusted" not in message and "{" not in message  # no repr of the certificate either


def test_ldap_still_says_an_unknown_ca_is_not_trusted(other_host, tmp_path, monkeypatch):
    server, _ = other_host
    stranger = CertificateAuthority(tmp_path / "stranger", "some other CA")
    url = f"ldaps://localhost:{server.port}"
    with pytest.raises(PermanentError) as info:
        ldap(url, stranger.path, monkeypatch).check()
    message = str(info.value)
    assert f"TLS certificate of {url} is not trusted by the CA in {stranger.path}" in message
    assert "does not name" not in message


def test_an_http_connector_names_a_host_name_mismatch_and_does_not_retry_it(other_host):
    server, ca = other_host
    url = f"https://localhost:{server.port}/scim/v2"
    with pytest.raises(PermanentError) as info:  # was a TransientError: retried as if the network would mend it
        scim(url, ca.path).check()
    message = str(info.value)
    assert "does not name the host localhost" in message and "not trusted" not in message


def test_an_http_connector_says_an_unknown_ca_is_not_trusted(other_host, tmp_path):
    server, _ = other_host
    stranger = CertificateAuthority(tmp_path / "stranger", "some other CA")
    with pytest.raises(PermanentError) as info:
        scim(f"https://localhost:{server.port}/scim/v2", stranger.path).check()
    assert f"is not trusted by the CA in {stranger.path}" in str(info.value)
