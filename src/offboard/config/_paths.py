"""Where offboard keeps its state: ``--data-dir``, else ``OFFBOARD_HOME``, else a per-user folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["data_dir", "bundled_policies_dir"]


def data_dir(create: bool = True) -> Path:
    """The data directory (the CLI's ``--data-dir`` sets ``OFFBOARD_HOME``)."""
    raw = os.environ.get("OFFBOARD_HOME")
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("offboard"))
    if create:
        path.mkdir(parents=True, exist_ok=True)
        try:
            path.chmod(0o700)
        except OSError:
            pass
    return path


def bundled_policies_dir() -> Path:
    """The policies shipped with offboard (inside the wheel, or ``policies/`` in a checkout)."""
    here = Path(__file__).resolve().parent.parent  # the offboard package
    for candidate in (here / "_policies", here.parent.parent / "policies"):
        if candidate.is_dir():
            return candidate
    return here / "_policies"
