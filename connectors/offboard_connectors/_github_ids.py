"""Who each GitHub login is, read in bulk for ``list_accounts``: the SAML external identities of the
organization's (or the enterprise's) identity provider, or members' verified-domain emails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["all_external_identities", "verified_domain_emails"]

ENTERPRISE = "admin:enterprise"
GraphQL = Callable[..., dict[str, Any]]  # GitHubConnector._graphql(query, variables, what, scope=...)

_IDENTITY_NODES = """
        pageInfo { hasNextPage endCursor }
        nodes {
          samlIdentity { nameId username emails { value primary } }
          scimIdentity { username emails { value primary } }
          user { login }
        }"""
_ALL_EXTERNAL_IDENTITIES = (
    """
query($org: String!, $after: String) {
  organization(login: $org) {
    samlIdentityProvider {
      externalIdentities(first: 100, after: $after) {"""
    + _IDENTITY_NODES
    + """
      }
    }
  }
}"""
)
_ALL_ENTERPRISE_IDENTITIES = (
    """
query($enterprise: String!, $after: String) {
  enterprise(slug: $enterprise) {
    ownerInfo {
      samlIdentityProvider {
        externalIdentities(first: 100, after: $after) {"""
    + _IDENTITY_NODES
    + """
        }
      }
    }
  }
}"""
)
_VERIFIED_EMAILS = """
query($org: String!, $after: String) {
  organization(login: $org) {
    membersWithRole(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { login organizationVerifiedDomainEmails(login: $org) }
    }
  }
}"""


def all_external_identities(graphql: GraphQL, org: str, enterprise: str | None, out: dict[str, dict[str, Any]]) -> bool:
    """Fill ``out`` from the SAML identity provider; False when neither organization nor enterprise has one."""
    level, after = "organization", None
    while True:
        if level == "organization":
            data = graphql(_ALL_EXTERNAL_IDENTITIES, {"org": org, "after": after}, "list SAML identities")
            provider = (data.get("organization") or {}).get("samlIdentityProvider")
            if provider is None and after is None and enterprise:
                level = "enterprise"
                continue
        else:
            data = graphql(
                _ALL_ENTERPRISE_IDENTITIES,
                {"enterprise": enterprise, "after": after},
                "list enterprise SAML identities",
                ENTERPRISE,
            )
            provider = ((data.get("enterprise") or {}).get("ownerInfo") or {}).get("samlIdentityProvider")
        if provider is None:
            return False
        connection = provider.get("externalIdentities") or {}
        for node in connection.get("nodes") or []:
            login = ((node or {}).get("user") or {}).get("login")
            if login:
                out[login.lower()] = _who(node, level)
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return True
        after = info["endCursor"]


def verified_domain_emails(graphql: GraphQL, org: str, out: dict[str, dict[str, Any]]) -> None:
    """Members' emails in the organization's verified domains (``User.organizationVerifiedDomainEmails``)."""
    after = None
    while True:
        data = graphql(_VERIFIED_EMAILS, {"org": org, "after": after}, "list members' verified-domain emails")
        connection = (data.get("organization") or {}).get("membersWithRole") or {}
        for node in connection.get("nodes") or []:
            emails = [str(e) for e in (node or {}).get("organizationVerifiedDomainEmails") or [] if e]
            if node.get("login") and emails:
                out[node["login"].lower()] = {
                    "email": emails[0],
                    "emails": emails,
                    "identified_by": "verified_domain_email",
                }
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return
        after = info["endCursor"]


def _who(node: dict[str, Any], level: str) -> dict[str, Any]:
    """What an external identity says about its person: every email-shaped value, the primary one first."""
    saml, scim = node.get("samlIdentity") or {}, node.get("scimIdentity") or {}
    values: list[str] = []
    for identity in (saml, scim):
        emails = identity.get("emails") or []
        values += [str(e["value"]) for e in emails if e and e.get("primary") and e.get("value")]
    values += [str(v) for v in (saml.get("nameId"), saml.get("username"), scim.get("username")) if v]
    for identity in (saml, scim):
        values += [str(e["value"]) for e in identity.get("emails") or [] if e and e.get("value")]
    emails = list(dict.fromkeys(v for v in values if "@" in v))
    who: dict[str, Any] = {"identified_by": f"{level}_saml" if saml else f"{level}_scim", "emails": emails}
    who["email"] = emails[0] if emails else None
    if saml.get("nameId"):
        who["saml_name_id"] = saml["nameId"]
    return who
