"""The SET signing key (separate from the audit key), the JWKS that publishes it, and signing.

SETs are compact JWS, RS256 (what Okta, Google and most receivers accept), with the explicit
``typ: secevent+jwt`` SSF 1.0 requires. The key is a PEM file: ``server.signals.signing_key``
or, by default, ``<data_dir>/ssf-signing-key.pem``, made on first use, readable by its owner only.
Its ``kid`` is the RFC 7638 thumbprint, so a new key gets a new ``kid`` and receivers refetch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from ..errors import ConfigError

__all__ = ["SigningKey", "ALGORITHM", "SET_TYPE"]

ALGORITHM = "RS256"
SET_TYPE = "secevent+jwt"
KEY_FILE = "ssf-signing-key.pem"


class SigningKey:
    """An RSA private key that signs SETs; its repr names only the ``kid``."""

    def __init__(self, key: RSAKey):
        self._key = key
        self.kid = key.thumbprint()

    @classmethod
    def load(cls, reference: str | None, data_dir: Path) -> SigningKey:
        """The key at ``file:PATH``, or the default one in ``data_dir`` (made when absent)."""
        if reference is not None:
            path = Path(reference.removeprefix("file:")).expanduser()
            where = f"server.signals.signing_key ({path})"
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read the key: {exc.strerror or exc}") from None
            return cls._parse(data, where)
        path = data_dir / KEY_FILE
        if not path.exists():
            key = RSAKey.generate_key(2048, private=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key.as_pem(private=True))
        return cls._parse(path.read_bytes(), f"{path}")

    @classmethod
    def _parse(cls, data: bytes, where: str) -> SigningKey:
        try:
            key = RSAKey.import_key(data)
        except (JoseError, ValueError, TypeError):
            raise ConfigError(f"{where}: not a PEM RSA private key") from None
        if not key.is_private:
            raise ConfigError(f"{where}: a public key cannot sign; give the private key")
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set receivers verify with."""
        public = self._key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of ``claims`` with ``typ: secevent+jwt``."""
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": SET_TYPE}
        payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        return jws.serialize_compact(header, payload, self._key, algorithms=[ALGORITHM])

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"
