"""offboard as an SSF receiver: SETs an identity provider pushes, verified, acted on like HR events.

For each ``server.signals.transmitters`` entry offboard reads the provider's configuration
metadata from its issuer URL, verifies every SET against the provider's JWKS (refetched once
when a SET names a key it has not seen: key rotation) and checks ``typ``, ``iss`` and ``aud``.
RISC ``account-disabled``, ``account-purged`` and CAEP ``session-revoked`` become a
``termination`` HR event for the subject, handed to the same intake as a webhook, so the same
guards (protected accounts, blast radius, one running case per person) decide what happens.
A SET that fails any check opens nothing and gets RFC 8935's error
(``{"err": "invalid_key" | "invalid_issuer" | "invalid_audience" | "invalid_request", ...}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, SecretError
from ..hr import HREvent, WebhookRejected
from ..intake._hr_adapters import check_person_ref
from ._requests import Refusal
from ._settings import SignalsSettings, TransmitterSettings
from ._subjects import CAEP, RISC, SSF, SubjectError, check_subject

__all__ = ["Receiver", "configuration_url", "ACCEPTED_ALGORITHMS"]

log = structlog.get_logger("offboard.signals")

ACCEPTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
EVENT_NAMES = {
    "account-disabled": RISC + "account-disabled",
    "account-purged": RISC + "account-purged",
    "session-revoked": CAEP + "session-revoked",
}
#: Seconds between two JWKS fetches a SET with an unknown key may cause (no fetch storm).
REFETCH_SECONDS = 5.0
MAX_SET_BYTES = 64 * 1024


def configuration_url(issuer: str) -> str:
    """Where an issuer's metadata is: ``/.well-known/ssf-configuration`` before its path (SSF 1.0)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, "/.well-known/ssf-configuration" + path, "", ""))


class _Provider:
    """One identity provider: its settings, tokens, metadata and keys."""

    def __init__(self, name: str, settings: TransmitterSettings, audience: str):
        self.name = name
        self.settings = settings
        self.audience = settings.audience or audience
        self.push_token = _secret(settings.push_token, f"server.signals.transmitters.{name}.push_token")
        self.management_token = _secret(
            settings.management_token, f"server.signals.transmitters.{name}.management_token"
        )
        self.metadata: dict[str, Any] | None = None
        self.keys: KeySet | None = None
        self.kids: set[str] = set()
        self.fetched_at = 0.0
        self.stream_id: str | None = None
        self.lock = threading.Lock()


def _secret(reference: str | None, where: str) -> Secret | None:
    if reference is None:
        return None
    try:
        return resolve_reference(reference)
    except SecretError as exc:
        raise ConfigError(f"{where}: {exc}") from None


class Receiver:
    """The identity providers offboard listens to, and what their SETs ask of it."""

    def __init__(
        self,
        settings: SignalsSettings,
        submit: Callable[[HREvent, str], Any],
        *,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings
        self.submit = submit  # (event, body hash) -> a future resolving once the event is durable
        self.providers = {name: _Provider(name, item, settings.issuer) for name, item in settings.transmitters.items()}
        self._http = httpx.Client(timeout=10, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    # -- the provider's metadata and keys ---------------------------------------------------

    def metadata(self, name: str) -> dict[str, Any]:
        """The provider's configuration metadata; its ``issuer`` must be the one configured."""
        provider = self.providers[name]
        if provider.metadata is None:
            url = configuration_url(provider.settings.issuer)
            data = self._get_json(url, f"the SSF configuration of {name}")
            if str(data.get("issuer", "")).rstrip("/") != provider.settings.issuer:
                raise ConfigError(f"{url}: its issuer {data.get('issuer')!r} is not {provider.settings.issuer!r}")
            provider.metadata = data
        return provider.metadata

    def _keys(self, name: str, kid: str | None, *, refresh: bool = False) -> KeySet:
        provider = self.providers[name]
        with provider.lock:
            now = time.monotonic()
            stale = provider.keys is None or (kid is not None and kid not in provider.kids)
            if (refresh or stale) and (provider.keys is None or now - provider.fetched_at >= REFETCH_SECONDS):
                uri = provider.settings.jwks_uri or self.metadata(name).get("jwks_uri")
                if not uri:
                    raise ConfigError(f"{name}: its SSF configuration names no jwks_uri")
                data = self._get_json(str(uri), f"the JWKS of {name}")
                try:
                    provider.keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError):
                    raise ConfigError(f"{uri}: not a JWK Set") from None
                provider.kids = {k.kid for k in provider.keys.keys if k.kid}
                provider.fetched_at = now
            assert provider.keys is not None
            return provider.keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ConfigError(f"cannot read {what} at {url}: {type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{what} at {url} is not a JSON object")
        return data

    # -- a stream at the provider -------------------------------------------------------------

    def subscribe(self, name: str) -> dict[str, Any]:
        """Create (or reuse) a push stream at the provider that delivers to offboard; its configuration."""
        provider = self.providers[name]
        if provider.management_token is None:
            raise ConfigError(f"server.signals.transmitters.{name}.management_token: needed to create a stream")
        endpoint = self.metadata(name).get("configuration_endpoint")
        if not endpoint:
            raise ConfigError(f"{name}: its SSF configuration names no configuration_endpoint")
        auth = {"Authorization": f"Bearer {provider.management_token.reveal()}", "Accept": "application/json"}
        ours = f"{self.settings.issuer}/ssf/receive/{name}"
        try:
            listed = self._http.get(str(endpoint), headers=auth)
            listed.raise_for_status()
            existing = listed.json()
            for stream in existing if isinstance(existing, list) else [existing]:
                if isinstance(stream, dict) and (stream.get("delivery") or {}).get("endpoint_url") == ours:
                    provider.stream_id = stream.get("stream_id")
                    return stream
            delivery: dict[str, Any] = {"method": "urn:ietf:rfc:8935", "endpoint_url": ours}
            if provider.push_token is not None:
                delivery["authorization_header"] = f"Bearer {provider.push_token.reveal()}"
            body = {
                "delivery": delivery,
                "events_requested": [EVENT_NAMES[e] for e in provider.settings.act_on if e in EVENT_NAMES],
                "description": "offboard: deprovision people the identity provider disables",
            }
            created = self._http.post(str(endpoint), json=body, headers=auth)
            created.raise_for_status()
            stream = created.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ConfigError(f"cannot create a stream at {endpoint}: {type(exc).__name__}: {exc}") from None
        if str(stream.get("iss", "")).rstrip("/") != provider.settings.issuer:
            raise ConfigError(f"{endpoint}: the stream's iss {stream.get('iss')!r} is not {provider.settings.issuer!r}")
        provider.stream_id = stream.get("stream_id")
        log.info("stream created at identity provider", transmitter=name, stream=provider.stream_id)
        return stream

    def subscribe_all(self) -> None:
        """Create or reuse a stream at every provider with a ``management_token``; problems are logged."""
        for name, provider in self.providers.items():
            if provider.management_token is None:
                continue
            try:
                self.subscribe(name)
            except ConfigError as exc:
                log.error("cannot create a stream at identity provider", transmitter=name, error=str(exc))

    # -- receiving -------------------------------------------------------------------------------

    def authenticate(self, name: str, authorization: str | None) -> None:
        provider = self.providers.get(name)
        if provider is None:
            raise Refusal(404, "not_found", "no such transmitter is configured")
        if provider.push_token is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        expected = provider.push_token.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(expected, token.strip().encode("utf-8", "replace")):
            raise Refusal(401, "authentication_failed", "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    def verify(self, name: str, token: bytes) -> dict[str, Any]:
        """The SET's claims once signature, typ, iss and aud check out; Refusal with RFC 8935's err."""
        provider = self.providers[name]
        try:
            text = token.decode("ascii").strip()
            header = jws.extract_compact(text.encode()).headers()
        except Exception:  # the error boundary: whatever a malformed token makes the parser raise is a 400
            raise Refusal(400, "invalid_request", "the body is not a compact JWS (a SET)") from None
        if not isinstance(header, dict):
            raise Refusal(400, "invalid_request", "the SET's header is not a JSON object")
        if header.get("typ") != "secevent+jwt":
            raise Refusal(400, "invalid_request", "the SET's typ must be secevent+jwt (SSF 1.0 explicit typing)")
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise Refusal(400, "invalid_key", f"algorithm {str(header.get('alg'))[:20]!r} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Refusal(400, "invalid_key", "kid must be a string")
        try:
            keys = self._keys(name, kid)
            if kid is not None and kid not in provider.kids:
                raise Refusal(400, "invalid_key", f"key {kid[:80]!r} is not in the transmitter's JWKS")
            verified = jws.deserialize_compact(text, keys, algorithms=list(ACCEPTED_ALGORITHMS))
        except ConfigError as exc:
            log.error("cannot verify SETs", transmitter=name, error=str(exc))
            raise Refusal(503, "temporarily_unavailable", "the transmitter's keys cannot be read now") from None
        except JoseError:
            raise Refusal(400, "invalid_key", "the signature does not verify with the transmitter's keys") from None
        try:
            claims = json.loads(verified.payload)
        except (ValueError, RecursionError):
            raise Refusal(400, "invalid_request", "the SET's payload is not JSON") from None
        if not isinstance(claims, dict):
            raise Refusal(400, "invalid_request", "the SET's payload is not a JSON object")
        if str(claims.get("iss", "")).rstrip("/") != provider.settings.issuer:
            raise Refusal(400, "invalid_issuer", "the SET's iss is not this transmitter's issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if provider.audience not in audiences:
            raise Refusal(400, "invalid_audience", "the SET's aud does not name offboard")
        for name_, why in (("sub", "must not be present"), ("exp", "must not be present")):
            if name_ in claims:
                raise Refusal(400, "invalid_request", f"the SET's {name_} claim {why} (SSF 1.0)")
        if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 200:
            raise Refusal(400, "invalid_request", "the SET's jti is required (a string of at most 200 characters)")
        events = claims.get("events")
        if not isinstance(events, dict) or not events or not all(isinstance(v, dict) for v in events.values()):
            raise Refusal(400, "invalid_request", "the SET's events claim must map an event type to an object")
        return claims

    def act(self, name: str, claims: dict[str, Any], body: bytes) -> dict[str, Any]:
        """Turn a verified SET into an HR event when it asks for one; what was done."""
        provider = self.providers[name]
        wanted = {EVENT_NAMES[e] for e in provider.settings.act_on if e in EVENT_NAMES}
        types = [t for t in claims["events"] if t in wanted]
        if not types:
            if SSF + "verification" in claims["events"]:
                log.info("verification event received", transmitter=name, jti=claims["jti"])
            return {"outcome": "ignored", "events": list(claims["events"])[:5]}
        event_type = types[0]
        person = self._person(claims, claims["events"][event_type])
        reason_text = event_type.rsplit("/", 1)[-1]
        event = HREvent(
            source=f"ssf:{name}"[:100],
            id=claims["jti"],
            type="termination",
            person=person,
            reason=f"{reason_text} signalled by {provider.settings.issuer} (SET {claims['jti']})",
        )
        result = self.submit(event, hashlib.sha256(body).hexdigest())
        return {"outcome": getattr(result, "outcome", "accepted"), "event": event.key}

    def _person(self, claims: dict[str, Any], event: dict[str, Any]) -> str:
        subject = claims.get("sub_id", event.get("subject"))
        try:
            subject = check_subject(subject, "sub_id")
        except SubjectError as exc:
            raise Refusal(400, "invalid_request", str(exc)) from None
        if subject.get("format") == "complex":
            subject = subject.get("user") or {}
        if subject.get("format") == "aliases":
            subject = next((s for s in subject["identifiers"] if s.get("format") in ("email", "iss_sub", "opaque")), {})
        fmt = subject.get("format")
        value = {"email": "email", "iss_sub": "sub", "opaque": "id"}.get(str(fmt))
        if value is None:
            raise Refusal(400, "invalid_request", f"a {fmt} subject cannot name a person here (email, iss_sub, opaque)")
        person = str(subject[value])[:320]
        try:  # as for an HR webhook: no invisible characters in a person reference
            check_person_ref(person, "sub_id")
        except WebhookRejected as exc:
            raise Refusal(400, "invalid_request", exc.message) from None
        return person
