"""The Entra simulator's Microsoft identity platform side: OIDC discovery, the JWKS and the v2.0 token
endpoint (client secret or certificate assertion, client-credentials grant)."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from datetime import UTC, datetime

from ._app import Request, Response, route
from ._entra_cert import ASSERTION_TYPE
from ._entra_parts import EntraParts

__all__ = ["EntraToken"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EntraToken(EntraParts):
    """Mixed into the Entra simulator."""

    # ----- token endpoint ---------------------------------------------------------------------
    @route("GET", "/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(self, req: Request) -> Response:
        t = req.params["tenant"]
        base = f"{self.base_url}/{t}"
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    @route("POST", "/{tenant}/oauth2/v2.0/token", write=False, limit="token")
    async def token(self, req: Request) -> Response:
        form = req.form()

        def fail(status: int, error: str, code: int, text: str) -> Response:
            return Response(
                status,
                {
                    "error": error,
                    "error_description": f"AADSTS{code}: {text}",
                    "error_codes": [code],
                    "timestamp": _now(),
                    "trace_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4()),
                },
            )

        if req.params["tenant"] not in (self.tenant_id, "organizations", "common"):
            return fail(400, "invalid_request", 90002, f"Tenant '{req.params['tenant']}' not found.")
        if form.get("grant_type") != "client_credentials":
            return fail(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return fail(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the directory.",
            )
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            why = self.certificate.check(form.get("client_assertion", ""), req.path)
            if why is not None:
                return fail(401, "invalid_client", 700027, why)
        elif form.get("client_secret") != self.client_secret:
            return fail(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if not form.get("scope", "").endswith("/.default"):
            return fail(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            )
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "appid": self.client_id,
            "tid": self.tenant_id,
            "roles": sorted(self.granted),
            "exp": int(time.time()) + 3599,
            "jti": secrets.token_urlsafe(12),
        }
        b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        tok = f"{b64({'typ': 'JWT', 'alg': 'none'})}.{b64(claims)}.{secrets.token_urlsafe(16)}"
        self._tokens.add(tok)
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
