"""GitHub commit search for the GitHub simulator: ``GET /search/commits`` with the ``org:``, ``author:`` and
``author-email:`` qualifiers, shaped as in ``@octokit/openapi`` ``ghec.json`` (``commit-search-result-item``).

GitHub links a commit to the account that has verified the commit's author email ("Why are my commits linked
to the wrong user?", docs.github.com/en/pull-requests/committing-changes-to-your-project/troubleshooting-commits);
an unlinked commit has ``author: null``. Commit search covers the default branch only and has its own rate limit,
30 requests a minute for an authenticated caller (docs.github.com/en/rest/search/search#rate-limit), reported
with ``x-ratelimit-resource: search``.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote_plus

from ._app import HTTPError, Request, Response, route

__all__ = ["GitHubCommits"]

API = "https://api.github.com"
REPOSITORIES = ("platform", "website", "infrastructure")
_QUALIFIERS = ("org", "author", "author-email", "repo")


class GitHubCommits:
    """Mixed into the GitHub simulator (which provides members, org, the paging and user helpers)."""

    members: dict[str, dict[str, Any]]
    org: str

    def _init_commits(self, seed: int) -> None:
        """Two commits by every login with access, each with the email the person works under; an unlinked one
        (an email no account verified) in each repository."""
        self.commits: list[dict[str, Any]] = []
        for n, rec in enumerate(sorted(self.members.values(), key=lambda r: r["login"].lower())):
            for i in range(2):
                self.commits.append(
                    {
                        "sha": hashlib.sha1(f"{seed}:{rec['login']}:{i}".encode()).hexdigest(),
                        "repo": REPOSITORIES[(n + i) % len(REPOSITORIES)],
                        "login": rec["login"],
                        "name": rec["name"],
                        "email": rec["email"],
                        "date": f"2026-{(n % 11) + 1:02d}-{(i * 9) + 3:02d}T10:00:00Z",
                    }
                )
        for repo in REPOSITORIES:
            self.commits.append(
                {
                    "sha": hashlib.sha1(f"{seed}:unlinked:{repo}".encode()).hexdigest(),
                    "repo": repo,
                    "login": None,
                    "name": "build bot",
                    "email": "builds@ci.invalid",
                    "date": "2026-06-01T10:00:00Z",
                }
            )

    def add_commit(self, login: str | None, email: str, repo: str = REPOSITORIES[0]) -> None:
        """For tests: a commit authored with ``email``, linked to ``login`` (None: an unverified email)."""
        n = len(self.commits)
        self.commits.append(
            {
                "sha": hashlib.sha1(f"extra:{n}:{email}".encode()).hexdigest(),
                "repo": repo,
                "login": login,
                "name": login or email,
                "email": email,
                "date": "2026-11-30T10:00:00Z",
            }
        )

    @route("GET", "/search/commits", perm=("repo", "read:org", "admin:org"))
    async def search_commits(self, req: Request) -> Response:
        q = unquote_plus(req.query.get("q", "")).strip()
        if not q:
            raise HTTPError(422, "Validation Failed")
        wanted: dict[str, str] = {}
        for term in q.split():
            name, sep, value = term.partition(":")
            if not sep or name not in _QUALIFIERS:  # a keyword: no commit message in the sandbox matches it
                return Response(200, {"total_count": 0, "incomplete_results": False, "items": []})
            wanted[name] = value.strip('"').lower()
        found = [c for c in self.commits if self._matches(c, wanted)]
        if req.query.get("sort") in ("author-date", "committer-date"):
            found.sort(key=lambda c: c["date"], reverse=req.query.get("order", "desc") == "desc")
        page = self._page(req, [self._search_item(c) for c in found])  # type: ignore[attr-defined]
        body = {"total_count": len(found), "incomplete_results": False, "items": page.body}
        return Response(200, body, page.headers)

    def _matches(self, commit: dict[str, Any], wanted: dict[str, str]) -> bool:
        org = wanted.get("org")
        if org is not None and org != self.org.lower():
            return False
        if "repo" in wanted and wanted["repo"] != f"{self.org}/{commit['repo']}".lower():
            return False
        if "author" in wanted and (commit["login"] or "").lower() != wanted["author"]:
            return False
        return "author-email" not in wanted or commit["email"].lower() == wanted["author-email"]

    def _search_item(self, c: dict[str, Any]) -> dict[str, Any]:
        from ._github import _num, simple_user

        repo_url = f"{API}/repos/{self.org}/{c['repo']}"
        person = {"name": c["name"], "email": c["email"], "date": c["date"]}
        user = simple_user(c["login"], _num(0, c["login"])) if c["login"] else None
        return {
            "url": f"{repo_url}/commits/{c['sha']}",
            "sha": c["sha"],
            "node_id": f"C_{c['sha'][:20]}",
            "html_url": f"https://github.com/{self.org}/{c['repo']}/commit/{c['sha']}",
            "comments_url": f"{repo_url}/commits/{c['sha']}/comments",
            "commit": {
                "author": person,
                "committer": person,
                "comment_count": 0,
                "message": "Update",
                "tree": {"sha": c["sha"][::-1], "url": f"{repo_url}/git/trees/{c['sha'][::-1]}"},
                "url": f"{repo_url}/git/commits/{c['sha']}",
            },
            "author": user,
            "committer": user,
            "parents": [],
            "repository": self._minimal_repository(c["repo"]),
            "score": 1.0,
        }

    def _minimal_repository(self, name: str) -> dict[str, Any]:
        """``minimal-repository`` with every property the description requires."""
        from ._github import _num, simple_user

        url = f"{API}/repos/{self.org}/{name}"
        templated = {
            "archive": "{archive_format}{/ref}",
            "assignees": "assignees{/user}",
            "blobs": "git/blobs{/sha}",
            "branches": "branches{/branch}",
            "collaborators": "collaborators{/collaborator}",
            "comments": "comments{/number}",
            "commits": "commits{/sha}",
            "compare": "compare/{base}...{head}",
            "contents": "contents/{+path}",
            "contributors": "contributors",
            "deployments": "deployments",
            "downloads": "downloads",
            "events": "events",
            "forks": "forks",
            "git_commits": "git/commits{/sha}",
            "git_refs": "git/refs{/sha}",
            "git_tags": "git/tags{/sha}",
            "hooks": "hooks",
            "issue_comment": "issues/comments{/number}",
            "issue_events": "issues/events{/number}",
            "issues": "issues{/number}",
            "keys": "keys{/key_id}",
            "labels": "labels{/name}",
            "languages": "languages",
            "merges": "merges",
            "milestones": "milestones{/number}",
            "notifications": "notifications{?since,all,participating}",
            "pulls": "pulls{/number}",
            "releases": "releases{/id}",
            "stargazers": "stargazers",
            "statuses": "statuses/{sha}",
            "subscribers": "subscribers",
            "subscription": "subscription",
            "tags": "tags",
            "teams": "teams",
            "trees": "git/trees{/sha}",
        }
        return {
            "id": _num(0, f"repo:{name}"),
            "node_id": f"R_{name}",
            "name": name,
            "full_name": f"{self.org}/{name}",
            "private": True,
            "fork": False,
            "description": None,
            "owner": simple_user(self.org, _num(0, self.org)),
            "html_url": f"https://github.com/{self.org}/{name}",
            "url": url,
            **{f"{key}_url": f"{url}/{suffix}" for key, suffix in templated.items()},
        }
