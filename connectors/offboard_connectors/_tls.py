"""TLS certificate failures in words: a certificate for another host is not an untrusted CA."""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit

__all__ = ["tls_problem"]

#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_MISMATCH_CODES = (62, 64)
_MISMATCH_WORDS = ("hostname mismatch", "ip address mismatch", "doesn't match any name", "not valid for")
_NAME = re.compile(r"\('(?:DNS|IP Address)', '([^']+)'\)")  # a subjectAltName entry as ldap3 shows the certificate
_REASON = re.compile(r"certificate verify failed: ([^(\]'\",]+?)\s*(?:\(_ssl\.c:\d+\)|$|['\"\],])")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def tls_problem(exc: BaseException, url: str, ca_file: object | None = None) -> str | None:
    """What is wrong with the server's certificate, in one sentence; None when ``exc`` is not about one."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    codes = {getattr(e, "verify_code", None) for e in chain if isinstance(e, ssl.SSLCertVerificationError)}
    host = urlsplit(url).hostname or url
    if codes & set(_MISMATCH_CODES) or any(word in text.lower() for word in _MISMATCH_WORDS):
        names = sorted(set(_NAME.findall(text)))
        listed = f" (it is for {', '.join(names)})" if names else ""
        return (
            f"TLS certificate of {url} does not name the host {host}{listed}: connect by a name the "
            f"certificate lists, or have it reissued to include {host}"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or codes:
        where = f"the CA in {ca_file}" if ca_file else "the system CAs"
        reasons = [getattr(e, "verify_message", None) for e in chain if isinstance(e, ssl.SSLCertVerificationError)]
        reasons = [r for r in reasons if r]
        match = _REASON.search(text)
        reason = reasons[0] if reasons else (match.group(1) if match else "certificate verify failed")
        return f"TLS certificate of {url} is not trusted by {where} ({reason}): set ca_file to the CA that issued it"
    return None
