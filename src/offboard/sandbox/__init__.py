"""Faithful local simulators of Entra ID, Google Workspace, Slack, GitHub, Okta, AWS IAM and a SCIM 2.0 app.

Interface::

    from offboard.sandbox import Sandbox
    with Sandbox(people=200, seed=1, latency_ms=0) as sb:     # or sb.start() ... sb.stop()
        sb.url("entra")             # https://localhost:PORT   (TLS; CA in sb.ca_file)
        sb.url("google_workspace")  # http://127.0.0.1:PORT    (also slack, github, scim)
        sb.config()                 # {"connectors": {name: {"type": name, "settings": {...}}},
                                    #  "people": [...hr_export of company.people...], "protected": [...]}
        sb.company.people           # tuple[offboard.models.Person]; sb.company.identities has the rest
        sim = sb.sim("slack")       # the simulator: inspection and knobs, live
        sim.account("a@corp.example")   # current account state as a dict (None if absent)
        sim.log.entries(method="POST", contains="/admin.users.session.reset")
        sim.knobs.update(latency_ms=20, error_rate=0.1, lie_rate=0.5)  # storm_rate, reset_rate, timeout_rate
        with sim.force(429, retry_after=2, count=1): ...   # next request(s) answer that status, vendor-shaped
        sim.limits["tier3"].count = 500; sim.knobs.window_scale = 0.01; sim.limiter.reset()

Systems (connector type names): entra, google_workspace, slack, github, scim, okta (TLS, like entra), aws (IAM).
Secrets in ``config()`` are ``file:`` references into the sandbox's data directory.
"""

from ._app import HTTPError, Request, Response, Simulator
from ._company import SYSTEMS, Company, Identity, make_company
from ._knobs import Knobs, Limit, LogEntry, RequestLog
from ._runner import Sandbox

__all__ = [
    "Sandbox",
    "Company",
    "Identity",
    "make_company",
    "SYSTEMS",
    "Simulator",
    "Knobs",
    "Limit",
    "RequestLog",
    "LogEntry",
    "Request",
    "Response",
    "HTTPError",
]
