"""Who a GitHub login is, by the commits it authored in the organization's repositories.

GitHub links a commit to the account that has verified the commit's author email (docs.github.com/en/
pull-requests/committing-changes-to-your-project/troubleshooting-commits/why-are-my-commits-linked-to-the-wrong-user),
so a commit in the organization authored with ``alice@corp.example`` and linked to ``alice-gh`` ties the two.
Both directions use the commit search (``GET /search/commits``, default branches only, 30 requests a minute):
``discover`` asks ``author-email:`` for a person's emails, the inventory asks ``author:`` for a login nothing
else names. Opt-in (``commit_emails: true``): for outside collaborators and organizations without SAML SSO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["login_by_commit_email", "commit_emails_of"]

Call = Callable[..., Any]  # GitHubConnector._call(method, path, what, params=...)


def login_by_commit_email(call: Call, org: str, emails: Iterable[str]) -> str | None:
    """The login GitHub linked to a commit authored with one of ``emails`` in ``org``'s repositories, or None."""
    for email in emails:
        if not email or any(c.isspace() for c in email) or '"' in email:
            continue
        found = call(
            "GET",
            "search/commits",
            "search commits by author email",
            params={"q": f"author-email:{email} org:{org}", "per_page": 1},
        ).json()
        for item in found.get("items") or []:
            login = (item.get("author") or {}).get("login")
            if login:
                return str(login)
    return None


def commit_emails_of(call: Call, org: str, login: str) -> list[str]:
    """Author emails of ``login``'s newest commits (up to 100) in ``org``'s repositories that GitHub linked to it."""
    found = call(
        "GET",
        "search/commits",
        "search commits by author",
        params={"q": f"author:{login} org:{org}", "sort": "author-date", "order": "desc", "per_page": 100},
    ).json()
    emails: list[str] = []
    for item in found.get("items") or []:
        if ((item.get("author") or {}).get("login") or "").lower() != login.lower():
            continue
        email = ((item.get("commit") or {}).get("author") or {}).get("email")
        if email and email.lower() not in (e.lower() for e in emails) and not email.endswith("noreply.github.com"):
            emails.append(email)
    return emails
