"""What SCIM 2.0 applications do with the requests offboard sends: one profile per application.

Each profile records the base URL pattern, how the token is obtained, which optional parts of
RFC 7644 the application implements (PATCH, filtering Groups on ``members``, Bulk), what
``active: false`` and ``DELETE /Users/{id}`` do there, and the published rate limit. Every fact
names its source in ``sources`` (a vendor documentation page) or says ``UNCONFIRMED``; the same
table, with the pages, is docs/connectors/scim-profiles.md (a test keeps the two in step).

``None`` for PATCH, filter or Bulk means "not documented": the connector asks the application's
``/ServiceProviderConfig`` and learns from refusals, as for a generic server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ScimProfile", "PROFILES", "UNCONFIRMED", "profile_names"]

UNCONFIRMED = "unconfirmed"

#: What a step does in the application: ``reversible`` (the account can be switched back on with its
#: data, memberships aside), ``destructive`` (the account, its identity or its data are gone; only a
#: new account brings the person back), or ``none`` (acknowledged, nothing changes).
Effect = Literal["reversible", "destructive", "none"]


@dataclass(frozen=True)
class ScimProfile:
    """One application's SCIM behaviour; see the module docstring."""

    name: str
    title: str
    base_url: str  # pattern; the placeholders in braces are the tenant's
    auth: str
    patch: bool | None
    filter_members: bool | None
    bulk: bool | None
    deactivate: Effect  # what PATCH/PUT active:false does
    delete: Effect  # what DELETE /Users/{id} does
    rate: float | None  # requests per second offboard sends by default (None: the connector's default)
    rate_limit: str  # the published limit in words
    notes: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)  # fact -> documentation page, or UNCONFIRMED

    def source(self, fact: str) -> str:
        return self.sources.get(fact, UNCONFIRMED)


_ATLASSIAN = "https://developer.atlassian.com/cloud/admin/user-provisioning/rest/intro/"
_ATLASSIAN_USERS = "https://developer.atlassian.com/cloud/admin/user-provisioning/rest/api-group-users/"
_ZOOM = "https://developers.zoom.us/docs/api/scim2/"
_ZOOM_OLD = "https://marketplace.zoom.us/docs/api-reference/scim-api/"
_SALESFORCE = "https://help.salesforce.com/HTViewHelpDoc?id=identity_scim_overview.htm"
_NOTION = "https://www.notion.com/help/provision-users-and-groups-with-scim"
_1P_SUSPEND = "https://developer.1password.com/docs/users-api/suspend-user"
_1P_CLI = "https://developer.1password.com/docs/cli/reference/management-commands/user"
_AWS = "https://docs.aws.amazon.com/singlesignon/latest/developerguide/"
_SLACK = "https://docs.slack.dev/reference/scim-api/"
_SLACK_LIMITS = "https://docs.slack.dev/reference/scim-api/rate-limits"
_GITHUB = "https://docs.github.com/en/enterprise-cloud@latest/rest/enterprise-admin/scim"
_GITHUB_REST_PROVISIONING = (
    "https://docs.github.com/en/enterprise-cloud@latest/admin/managing-iam/provisioning-user-accounts-with-scim/"
    "provisioning-users-and-groups-with-scim-using-the-rest-api"
)
_GITHUB_DEPROVISION = (
    "https://docs.github.com/en/enterprise-cloud@latest/admin/managing-iam/provisioning-user-accounts-with-scim/"
    "deprovisioning-and-reinstating-users"
)
_RFC = "https://www.rfc-editor.org/rfc/rfc7644"

PROFILES: dict[str, ScimProfile] = {
    p.name: p
    for p in (
        ScimProfile(
            name="generic",
            title="Any SCIM 2.0 service provider (RFC 7643/7644)",
            base_url="the application's SCIM root; /Users and /Groups below it",
            auth="bearer token",
            patch=None,
            filter_members=None,
            bulk=None,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="none published; 10 requests/s by default, set connectors.NAME.rate",
            notes=("PATCH, filter and Bulk are optional in RFC 7644; /ServiceProviderConfig says which",),
            sources={"patch": _RFC, "filter_members": _RFC, "bulk": _RFC, "deactivate": _RFC, "delete": _RFC},
        ),
        ScimProfile(
            name="atlassian",
            title="Atlassian Cloud (Guard / Access user provisioning)",
            base_url="https://api.atlassian.com/scim/directory/{directoryId}",
            auth="bearer: the directory's API key (not the organization admin API key)",
            patch=True,
            filter_members=None,
            bulk=None,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="unconfirmed: no SCIM-specific figure found; 429 on excess",
            notes=(
                "DELETE unlinks the user from the identity provider, deactivates the Atlassian account and "
                "deletes the SCIM record; only a new SCIM record (a new id) brings it back",
                "a deactivated account can be reactivated in Atlassian Administration",
            ),
            sources={"base_url": _ATLASSIAN, "auth": _ATLASSIAN, "delete": _ATLASSIAN_USERS},
        ),
        ScimProfile(
            name="zoom",
            title="Zoom (SCIM2 API)",
            base_url="https://api.zoom.us/scim2",
            auth="OAuth 2.0 (server-to-server OAuth app), scope scim2 (granular: scim2:admin)",
            patch=True,
            filter_members=None,
            bulk=False,
            deactivate="reversible",
            delete="destructive",
            rate=1.0,
            rate_limit="1 request/s per account per SCIM2 endpoint (older reference); now by rate-limit label",
            notes=("needs SSO enabled and an approved vanity URL (Business or Education accounts)",),
            sources={
                "base_url": _ZOOM,
                "auth": _ZOOM,
                "patch": _ZOOM,
                "bulk": _ZOOM,
                "deactivate": _ZOOM,
                "delete": _ZOOM,
                "rate": _ZOOM_OLD,
            },
        ),
        ScimProfile(
            name="salesforce",
            title="Salesforce (SCIM 2.0 with Salesforce extensions)",
            base_url="https://{MyDomain}.my.salesforce.com/services/scim/v2",
            auth="OAuth 2.0 access token",
            patch=True,
            filter_members=None,
            bulk=None,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="unconfirmed: the org's REST API request allocation applies",
            notes=(
                "Salesforce deactivates users rather than deleting them; a deactivated user can be queried "
                "and reactivated. What DELETE /Users/{id} answers is unconfirmed: use the deactivation",
            ),
            sources={"auth": _SALESFORCE, "patch": _SALESFORCE, "deactivate": _SALESFORCE},
        ),
        ScimProfile(
            name="notion",
            title="Notion (Enterprise plan)",
            base_url="https://api.notion.com/scim/v2",
            auth="bearer: a SCIM token a workspace owner generates",
            patch=None,
            filter_members=None,
            bulk=None,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="unconfirmed",
            notes=(
                "DELETE removes the member from the workspace; guests cannot be managed through SCIM",
                "a token dies when the workspace owner who made it leaves or loses the owner role: "
                "offboarding that owner breaks this connector; replace the token first",
            ),
            sources={"auth": _NOTION, "delete": _NOTION, "notes": _NOTION},
        ),
        ScimProfile(
            name="1password",
            title="1Password (SCIM bridge, self-hosted)",
            base_url="https://{your-scim-bridge}/scim/v2",
            auth="bearer: the bridge token from the 1Password admin console",
            patch=None,
            filter_members=None,
            bulk=None,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="unconfirmed",
            notes=(
                "a suspended user keeps their data and can be reactivated (Users API); that SCIM "
                "active:false maps to this suspension is unconfirmed",
                "removing a user removes the user and all their data from the account",
            ),
            sources={"deactivate": _1P_SUSPEND, "delete": _1P_CLI},
        ),
        ScimProfile(
            name="aws-identity-center",
            title="AWS IAM Identity Center (SCIM endpoint)",
            base_url="https://scim.{region}.amazonaws.com/{tenant_id}/scim/v2",
            auth="bearer: an access token generated in the IAM Identity Center console",
            patch=True,
            filter_members=None,
            bulk=False,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="unconfirmed figure; ThrottlingException (429) on excess",
            notes=(
                "filters: only eq (joined by and); /Bulk, /Me and /Search are not supported",
                "one PATCH request may not hold several operations on active or userName",
                "PatchGroup does not support remove-all or replace",
            ),
            sources={
                "base_url": _AWS + "deleteuser.html",
                "patch": _AWS + "patchuser.html",
                "bulk": _AWS + "limitations.html",
                "delete": _AWS + "deleteuser.html",
                "notes": _AWS + "limitations.html",
            },
        ),
        ScimProfile(
            name="slack",
            title="Slack (SCIM API, Business+ and Enterprise Grid)",
            base_url="https://api.slack.com/scim/v2",
            auth="bearer: a user token (xoxp-) of an Org/Workspace Owner with the admin scope",
            patch=True,
            filter_members=None,
            bulk=False,
            deactivate="reversible",
            delete="reversible",
            rate=10.0,
            rate_limit="org-wide across all SCIM apps: 600 writes/min (burst 180), 180/min per user write",
            notes=("DELETE /Users/{id} sets the user to deactivated; active:true reactivates",),
            sources={
                "base_url": _SLACK,
                "auth": _SLACK,
                "patch": _SLACK,
                "delete": _SLACK,
                "rate": _SLACK_LIMITS,
            },
        ),
        ScimProfile(
            name="github-emu",
            title="GitHub Enterprise Managed Users (enterprise SCIM)",
            base_url="https://api.github.com/scim/v2/enterprises/{enterprise}",
            auth="classic PAT of the setup user with the scim:enterprise scope",
            patch=True,
            filter_members=None,
            bulk=False,
            deactivate="reversible",
            delete="destructive",
            rate=None,
            rate_limit="no more than 1,000 users per hour; REST primary limits apply",
            notes=(
                "active:false is a soft deprovision: suspended, handle and email obfuscated, reinstated by active:true",
                "DELETE is a hard deprovision: the user is anonymised and their PATs, SSH/GPG keys and OAuth "
                "authorisations are deleted; a new account is needed",
                "GitHub wants the IdP as the only SCIM writer: prefer disabling in the IdP where one is in charge",
            ),
            sources={
                "base_url": _GITHUB,
                "auth": _GITHUB_REST_PROVISIONING,
                "patch": _GITHUB,
                "deactivate": _GITHUB_DEPROVISION,
                "delete": _GITHUB_DEPROVISION,
                "rate": _GITHUB_REST_PROVISIONING,
            },
        ),
    )
}


def profile_names() -> list[str]:
    return sorted(PROFILES)
