"""The process's limit on open files, raised to what the system allows before a run opens its connections.

A bulk run keeps many connections open at once: each system's threads hold their own (httplib2 and the
vendors' SDKs keep connections per client and thread), and a 1,000-person run at the vendors' real limits
held about 870 descriptors in the engine process (docs/performance.md). Many systems start a process with
a soft limit of 1,024 open files while allowing far more (the hard limit); past the soft limit every new
connection fails with ``OSError: [Errno 24] Too many open files``. As Go's runtime does since 1.19, the
soft limit is raised to the hard limit (at most ``WANTED``) when the engine opens; it is never lowered.
"""

from __future__ import annotations

import structlog

__all__ = ["WANTED", "raise_open_files_limit"]

WANTED = 65_536

log = structlog.get_logger("offboard.engine")


def raise_open_files_limit(wanted: int = WANTED) -> int | None:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``wanted`` within the hard limit; the soft limit after, or None
    where the platform has no such limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # a container may refuse even within the hard limit
            log.info("open files limit kept", soft=soft, hard=hard, why=str(exc))
            return soft
        log.debug("open files limit raised", before=soft, after=target)
        return target
    return soft
