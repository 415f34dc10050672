"""The certificate credential of the Entra simulator's app: a self-signed certificate and the check of
the signed client assertion msal sends instead of a secret (RFC 7523 JWT bearer client authentication,
as Microsoft's identity platform documents for certificate credentials)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from typing import Any

__all__ = ["ASSERTION_TYPE", "AppCertificate"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AppCertificate:
    """A key pair and self-signed certificate registered on the app (made on first use)."""

    def __init__(self, client_id: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.client_id = client_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offboard sandbox app")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.thumbprint = hashlib.sha1(der).hexdigest().upper()  # as the portal shows it
        self._x5t = {_b64(hashlib.sha1(der).digest()), _b64(hashlib.sha256(der).digest())}
        self._public = key.public_key()

    def check(self, assertion: str, token_path: str) -> str | None:
        """None when ``assertion`` is a valid client assertion for this app, else the reason."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            head: dict[str, Any] = json.loads(_unb64(head_b64))
            body: dict[str, Any] = json.loads(_unb64(body_b64))
            signature = _unb64(sig_b64)
        except (ValueError, json.JSONDecodeError):
            return "The client assertion is not a well-formed JWT."
        thumb = str(head.get("x5t#S256") or head.get("x5t") or "")
        if thumb.rstrip("=") not in self._x5t:  # base64url, with or without padding
            return f"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}']"
        signed = f"{head_b64}.{body_b64}".encode()
        pad: Any = {
            "RS256": padding.PKCS1v15(),
            "PS256": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        }.get(str(head.get("alg")))
        if pad is None:
            return f"The client assertion uses an unsupported algorithm {head.get('alg')!r}."
        try:
            self._public.verify(signature, signed, pad, hashes.SHA256())
        except InvalidSignature:
            return "Client assertion contains an invalid signature."
        if body.get("iss") != self.client_id or body.get("sub") != self.client_id:
            return "The client assertion's iss and sub must be the application's client id."
        if not str(body.get("aud", "")).rstrip("/").endswith(token_path.rstrip("/")):
            return f"The client assertion's audience {body.get('aud')!r} is not this token endpoint."
        if float(body.get("exp") or 0) < time.time():
            return "The client assertion has expired."
        return None
